//! Formats we verify but never produce: what teams migrate from. Each is behind its own
//! feature (`legacy-bcrypt`, `legacy-pbkdf2`, both default), so an application that never
//! stored one does not compile its dependency.

#[cfg(feature = "legacy-pbkdf2")]
use base64::Engine as _;
#[cfg(feature = "legacy-pbkdf2")]
use base64::engine::general_purpose::STANDARD;
#[cfg(feature = "legacy-pbkdf2")]
use subtle::ConstantTimeEq;

use super::HashError;

/// The error for a legacy format whose feature this build leaves out.
#[cfg_attr(all(feature = "legacy-bcrypt", feature = "legacy-pbkdf2"), expect(dead_code))]
pub(super) fn disabled(scheme: &'static str, feature: &'static str) -> HashError {
    HashError::FeatureDisabled { scheme, feature }
}

/// A bcrypt hash: `$2a$`, `$2b$` or `$2y$`, a two-digit cost and 53 characters of salt and
/// digest. `$2x$` (hashes from the buggy pre-2011 crypt_blowfish) is refused.
#[cfg(feature = "legacy-bcrypt")]
pub(super) struct Bcrypt<'h> {
    hash: &'h str,
}

#[cfg(feature = "legacy-bcrypt")]
impl<'h> Bcrypt<'h> {
    const SCHEME: &'static str = "bcrypt";

    pub(super) fn parse(hash: &'h str, max_cost: u32) -> Result<Self, HashError> {
        let malformed = HashError::Malformed { scheme: Self::SCHEME };
        let bytes = hash.as_bytes();
        if bytes.len() != 60 || !hash.is_ascii() {
            return Err(malformed);
        }
        if !matches!(&bytes[..4], b"$2a$" | b"$2b$" | b"$2y$") || bytes[6] != b'$' {
            return Err(malformed);
        }
        let (tens, ones) = (bytes[4], bytes[5]);
        if !tens.is_ascii_digit() || !ones.is_ascii_digit() {
            return Err(malformed);
        }
        let cost = u32::from(tens - b'0') * 10 + u32::from(ones - b'0');
        if !(4..=31).contains(&cost) {
            return Err(malformed);
        }
        if cost > max_cost {
            return Err(HashError::LimitExceeded { scheme: Self::SCHEME });
        }
        Ok(Self { hash })
    }

    /// bcrypt reads at most 72 bytes of the password, as the stacks that made these
    /// hashes did; the bcrypt crate compares digests in constant time.
    pub(super) fn matches(&self, password: &[u8]) -> Result<bool, HashError> {
        bcrypt::verify(password, self.hash).map_err(|_| HashError::Malformed { scheme: Self::SCHEME })
    }
}

/// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 digest>`.
#[cfg(feature = "legacy-pbkdf2")]
pub(super) struct DjangoPbkdf2<'h> {
    params: pbkdf2::Params,
    salt: &'h str,
    expected: [u8; 32],
}

#[cfg(feature = "legacy-pbkdf2")]
impl<'h> DjangoPbkdf2<'h> {
    const SCHEME: &'static str = "pbkdf2_sha256";

    pub(super) fn parse(hash: &'h str, max_iterations: u32) -> Result<Self, HashError> {
        let malformed = HashError::Malformed { scheme: Self::SCHEME };
        let mut parts = hash.split('$');
        let (Some(Self::SCHEME), Some(iterations), Some(salt), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed);
        };
        // Digits only: `str::parse` would also accept a leading `+`.
        if iterations.is_empty() || iterations.len() > 10 || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed);
        }
        let iterations: u32 = iterations.parse().map_err(|_| malformed.clone())?;
        if iterations == 0 || salt.is_empty() || salt.len() > 256 {
            return Err(malformed);
        }
        if iterations > max_iterations {
            return Err(HashError::LimitExceeded { scheme: Self::SCHEME });
        }
        let params = pbkdf2::Params::new(iterations).map_err(|_| malformed.clone())?;
        let mut expected = [0u8; 32];
        match STANDARD.decode_slice(digest, &mut expected) {
            Ok(32) => {}
            _ => return Err(malformed),
        }
        Ok(Self { params, salt, expected })
    }

    pub(super) fn matches(&self, password: &[u8]) -> bool {
        let mut computed = [0u8; 32];
        // The non-generic entry point is compiled (optimized) in the pbkdf2 crate; the
        // generic one would be compiled here, unoptimized in debug builds, and Django's
        // million iterations would take seconds.
        pbkdf2::pbkdf2_hmac_with_params(
            password,
            self.salt.as_bytes(),
            pbkdf2::Algorithm::Pbkdf2Sha256,
            self.params,
            &mut computed,
        );
        computed.ct_eq(&self.expected).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "legacy-bcrypt")]
    const BCRYPT: &str = "$2a$10$qvLI/JfB1b.sghDhc6vfceKZTQInV8BwlxWWnWphAJVXGjUdAOXn2";

    #[test]
    #[cfg(feature = "legacy-bcrypt")]
    fn bcrypt_structure_is_checked_before_computing() {
        assert!(Bcrypt::parse(BCRYPT, 14).is_ok());
        let malformed = |h: &str| matches!(Bcrypt::parse(h, 31), Err(HashError::Malformed { .. }));
        assert!(malformed(&BCRYPT.replace("$2a$", "$2x$")));
        assert!(malformed(&BCRYPT.replace("$2a$", "$2c$")));
        assert!(malformed(&BCRYPT.replace("$10$", "$1a$")));
        assert!(malformed(&BCRYPT.replace("$10$", "$+1$")));
        assert!(malformed(&BCRYPT.replace("$10$", "$03$")));
        assert!(malformed(&BCRYPT.replace("$10$", "$32$")));
        assert!(malformed(&BCRYPT[..59]));
        assert!(malformed(&format!("{BCRYPT}x")));
        assert!(malformed(&BCRYPT.replacen('q', "é", 1)));
        // A cost of 31 would take days; refused without computing.
        assert!(matches!(
            Bcrypt::parse(&BCRYPT.replace("$10$", "$31$"), 14),
            Err(HashError::LimitExceeded { .. })
        ));
    }

    #[test]
    #[cfg(feature = "legacy-bcrypt")]
    fn bcrypt_with_bad_base64_is_an_error() {
        let bad = format!("{}{}", &BCRYPT[..7], "!".repeat(53));
        let parsed = Bcrypt::parse(&bad, 14).unwrap();
        assert!(parsed.matches(b"pw").is_err());
    }

    #[test]
    #[cfg(feature = "legacy-pbkdf2")]
    fn pbkdf2_structure_is_checked_before_computing() {
        let digest = STANDARD.encode([7u8; 32]);
        let ok = format!("pbkdf2_sha256$1000$salt$${digest}");
        assert!(DjangoPbkdf2::parse(&ok, 10_000).is_err(), "five fields");
        let ok = format!("pbkdf2_sha256$1000$salt${digest}");
        assert!(DjangoPbkdf2::parse(&ok, 10_000).is_ok());
        for bad in [
            format!("pbkdf2_sha256$+1000$salt${digest}"),
            format!("pbkdf2_sha256$0$salt${digest}"),
            format!("pbkdf2_sha256$999$salt${digest}"),
            format!("pbkdf2_sha256$$salt${digest}"),
            format!("pbkdf2_sha256$99999999999$salt${digest}"),
            format!("pbkdf2_sha256$1000$${digest}"),
            "pbkdf2_sha256$1000$salt$c2hvcnQ=".to_owned(),
            "pbkdf2_sha256$1000$salt$not base64!".to_owned(),
            "pbkdf2_sha256$1000$salt".to_owned(),
            format!("pbkdf2_sha1$1000$salt${digest}"),
        ] {
            assert!(
                matches!(DjangoPbkdf2::parse(&bad, 10_000), Err(HashError::Malformed { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            DjangoPbkdf2::parse(&format!("pbkdf2_sha256$4000000000$salt${digest}"), 10_000),
            Err(HashError::LimitExceeded { .. })
        ));
    }
}
