//! The audit log: an optional capability, for stores that keep every event.

use time::OffsetDateTime;

use crate::audit::{AuditQuery, AuditRecord};
use crate::error::StoreError;

store_trait! {
    /// Keeps [`AuditRecord`]s ([`AuditLog`](crate::AuditLog) writes them) and reads them
    /// back in the log's order. The contract (the conformance suite checks it):
    ///
    /// - Records read back as written, in the order of their ids, filtered by account and
    ///   kind, after a cursor, at most the query's limit.
    /// - A record naming an account that does not exist (deleted before the record was
    ///   written) is kept without the account, its client's address or user agent.
    /// - Deleting an account ([`AccountDeletionStore`](crate::AccountDeletionStore)) keeps
    ///   its records, naming it by the digest of its address only, without its clients.
    /// - The writes a service records ([`PendingRecords`](crate::PendingRecords) lists the
    ///   protocol) take the records handed to them and store them in their own
    ///   transaction when they change something, none when they change nothing: the
    ///   record of a change is kept with it or not at all. The writes are those of
    ///   [`recorded_change_conformance_tests!`](crate::recorded_change_conformance_tests):
    ///   `insert_user`, `set_password_hash`, `set_active`, `revoke_access_tokens`,
    ///   `mark_email_verified`, `insert_session`, `rotate_refresh_token`, `revoke_session`,
    ///   `insert_one_time_token`, the three role changes, `insert_totp_factor`,
    ///   `confirm_totp_factor`, `delete_totp_factor`, `replace_recovery_codes`,
    ///   `insert_user_with_identity`, `insert_identity`, `delete_identity`, the three
    ///   email-change writes and `delete_user`. A store that does not take them still
    ///   has a complete log, written just after each change by the
    ///   [`AuditLog`](crate::AuditLog)'s writer.
    pub trait AuditLogStore {
        /// Stores `records` (one transaction).
        ///
        /// # Errors
        ///
        /// Backend failures (nothing is stored then).
        async fn insert_audit_records(&self, records: &[AuditRecord]) -> Result<(), StoreError>;

        /// The records `query` selects.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn list_audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

        /// Deletes the records from before `before` (the retention); returns how many.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_audit_records_before(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
    }
}
