//! One HTTP contract for every example server: each case starts a server binary (on a
//! free port, with a temporary SQLite file or a fresh PostgreSQL schema) and checks part
//! of the contract over real HTTP. A server's crate runs all of them with one line in its
//! tests:
//!
//! ```ignore
//! // examples/axum/tests/contract.rs
//! http_contract::http_contract_tests!(env!("CARGO_BIN_EXE_example-axum"));
//! ```
//!
//! Store-dependent cases run once on SQLite and once on PostgreSQL (`AUTH_TEST_DATABASE_URL`,
//! default the local server; absent outside CI, they skip with a notice, in CI they fail).
//! A difference between two servers is a failing case: besides the cases' own checks,
//! every server on every store must answer a scripted conversation over every route
//! exactly as `reference/transcript.json` records it (see `transcript.rs`), publish the
//! OpenAPI document `reference/openapi.json` at `/openapi.json`, and answer that
//! conversation only as the document allows (see `cases/openapi.rs`).

#![forbid(unsafe_code)]
// Test support: a case fails loudly, with what broke the contract, by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cases;
pub mod oidc_provider;
mod server;
mod transcript;

pub use server::*;

/// Expands to one `#[tokio::test]` per case against the server binary `$binary`: the
/// store-dependent cases in modules `sqlite` and `postgres`, the others once.
#[macro_export]
macro_rules! http_contract_tests {
    ($binary:expr) => {
        $crate::__http_contract_modules! { $binary;
            stores: [ the_answers_match_the_reference_transcript, the_answers_conform_to_the_openapi_document, register_login_and_me, registration_errors, every_login_failure_is_the_same_answer, malformed_requests_get_clear_errors_never_a_500, refresh_rotates_and_reuse_ends_the_session, logout_sessions_and_logout_everywhere, password_change_revokes_everything, password_reset_through_the_outbox, email_verification_through_the_outbox, administration_needs_the_admin_role, an_address_changes_through_both_mailboxes, an_account_is_deleted_whole_and_its_address_is_free, sign_ins_from_new_devices_are_mailed_when_enabled, the_audit_log_keeps_sign_ins_refusals_and_denials, login_is_rate_limited_with_retry_after, keys_and_health, a_refresh_token_survives_a_restart, no_password_or_token_ever_reaches_the_logs, the_seeds_curl_commands_work_as_written, more_contract_failures, password_rules_refuse_patterns_and_context_words, an_access_token_ends_with_its_session, mail_floods_send_at_most_the_allowance, failed_logins_before_registration_do_not_lock_the_new_account, credentialed_answers_are_not_stored_and_https_sites_send_hsts, roles_are_bounded_so_every_issued_token_is_accepted, unmailable_and_look_alike_addresses_are_refused_at_registration, keys_rotate_without_refusing_a_token_before_it_expires, asymmetric_signing_keys_are_published_and_never_logged, ended_sessions_are_purged_on_the_interval, two_factor_authentication_from_enrolment_to_disabling, codes_used_concurrently_sign_in_once, step_up_and_second_factor_roles, sign_in_through_an_openid_provider, passkeys_register_sign_in_and_are_managed ]
            sqlite: [ it_refuses_to_start_without_a_real_key_where_one_is_required, sigterm_finishes_and_stops_cleanly, x_forwarded_for_is_believed_only_from_the_trusted_proxy, rate_limits_come_from_the_environment, smtp_url_sends_mail_through_smtp, the_seeds_python_stack_verifies_our_access_tokens, a_saturated_hash_pool_answers_503_busy_at_once, a_busy_request_repeated_at_once_waits_for_its_retry_after, stalled_connections_are_cut_and_others_are_still_served, a_connection_over_the_cap_is_refused_before_it_sends_anything, oversized_bodies_are_answered_not_reset, a_trickled_body_is_cut_by_the_body_timeout, a_permanent_lock_says_to_reset_the_password, foreign_audiences_and_critical_headers_are_refused, no_host_and_overlong_uris_are_refused_alike, request_heads_are_limited_alike, a_mail_that_cannot_be_sent_is_an_error_in_the_log_and_the_answer_is_unchanged, a_sqlite_lock_held_elsewhere_is_503_unavailable_at_once_and_the_server_recovers, a_request_not_answered_in_time_is_503_at_the_request_timeout, an_hs256_deployment_moves_to_an_asymmetric_key_without_refusing_a_token, pyjwt_verifies_our_tokens_with_the_jwks_url_alone_across_a_rotation, key_mistakes_stop_the_start_naming_the_variable, a_named_key_retires_through_the_jwks_it_published, cross_origin_requests_are_answered_for_the_listed_origins_only, without_cors_origins_no_cross_origin_headers_are_sent, a_wildcard_or_malformed_cors_origin_stops_the_start, two_servers_sharing_redis_count_each_limit_once, a_redis_outage_is_503_with_retry_after_and_the_server_recovers, authenticator_apps_read_our_enrolment_and_make_codes_we_accept, totp_secrets_are_sealed_at_rest_under_a_key_that_rotates, a_provider_down_at_start_is_503_until_it_is_back, a_full_disk_is_503_for_writes_reads_go_on_and_the_server_recovers, sigterm_under_load_answers_every_request_it_accepted ]
            postgres: [ a_database_outage_is_503_with_retry_after_and_the_server_recovers, three_instances_over_one_database_behave_as_one, a_database_restart_is_503_at_once_and_loses_no_acknowledged_registration ]
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __http_contract_modules {
    ($binary:expr; stores: [ $($case:ident),* ] sqlite: [ $($lite:ident),* ] postgres: [ $($pg:ident),* ]) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::cases::$case($crate::Target { binary: $binary, backend: $crate::Backend::Sqlite }).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $lite() {
                    $crate::cases::$lite($crate::Target { binary: $binary, backend: $crate::Backend::Sqlite }).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::cases::$case($crate::Target { binary: $binary, backend: $crate::Backend::Postgres }).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $pg() {
                    $crate::cases::$pg($crate::Target { binary: $binary, backend: $crate::Backend::Postgres }).await;
                }
            )*
        }
    };
}
