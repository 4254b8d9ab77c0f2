//! The crypto backend jsonwebtoken signs and verifies with.
//!
//! jsonwebtoken 11 picks its backend from its own features, once per process: exactly
//! one of `aws_lc_rs` and `rust_crypto` must be on, or it panics at the first signature.
//! Features are unified across a program, so an application whose own jsonwebtoken turns
//! on the other backend than this crate's would get both, and that panic. Installing the
//! backend this crate's features chose as the process default, before any key exists,
//! makes that combination work as long as this crate makes its first key before the
//! application's first jsonwebtoken call (the crate documentation says what else to do).

use std::sync::Once;

/// Installs this crate's backend as jsonwebtoken's process default, unless one was
/// installed already (by the application, which then keeps its choice: every backend
/// implements every algorithm this crate uses). Without either backend feature, nothing
/// is installed and the application must choose one (see the crate documentation).
pub(super) fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        #[cfg(feature = "aws-lc-rs")]
        let chosen = Some(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
        #[cfg(all(feature = "rust-crypto", not(feature = "aws-lc-rs")))]
        let chosen = Some(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER);
        #[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
        let chosen: Option<&'static jsonwebtoken::crypto::CryptoProvider> = None;
        if let Some(provider) = chosen {
            // An error means another was installed first; see above.
            let _ = provider.install_default();
        }
    });
}
