//! Email addresses, normalized once so that no code path can compare raw strings.

use std::fmt;
use std::str::FromStr;

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

/// Longest local part, in bytes (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_BYTES: usize = 64;
/// Longest address, in bytes (RFC 5321 path limit minus the angle brackets).
pub const MAX_ADDRESS_BYTES: usize = 254;

/// A normalized email address: the identity key of an account.
///
/// Every function that stores or looks up an account takes an `Email`, never a `&str`,
/// so the normalization below cannot be skipped. [`Email::parse`]:
///
/// - trims surrounding whitespace;
/// - applies Unicode NFKC and lowercases the local part (so `Ｋate`, `Kate` and
///   `kate` written with the Kelvin sign `K` are one mailbox; Greek final sigma `ς`
///   becomes `σ`, so `ΟΔΟΣ` and `ΟΔΟσ` are one mailbox too);
/// - converts the domain to its lowercase ASCII form with IDNA (UTS #46), so
///   `bücher.de` and `xn--bcher-kva.de` are one domain;
/// - keeps dots and `+tags`: which of those a provider ignores is the provider's rule,
///   not ours.
///
/// It rejects addresses without exactly one `@`, with an empty side, with whitespace,
/// control, format, default-ignorable (invisible), private-use or unassigned characters
/// anywhere (by their Unicode properties), with characters that are special in mail
/// headers (`"(),:;<>[\]`), with a local part over 64 bytes or a whole address over
/// 254 bytes (after normalization), and with a domain that is not a valid internet
/// hostname (it must contain a dot; address literals such as `[127.0.0.1]` are refused).
///
/// Parsing is idempotent: `Email::parse(e.as_str())` returns `e` for every `Email`.
///
/// ```
/// use auth_core::Email;
///
/// let email = Email::parse("  Alice.Smith+News@Bücher.DE ").unwrap();
/// assert_eq!(email.as_str(), "alice.smith+news@xn--bcher-kva.de");
/// assert_eq!(email.local_part(), "alice.smith+news");
/// assert_eq!(email.domain(), "xn--bcher-kva.de");
///
/// // The Kelvin sign (U+212A) is not a way to register a second `kate@`.
/// assert_eq!(Email::parse("\u{212A}ate@example.com").unwrap().as_str(), "kate@example.com");
///
/// assert!(Email::parse("no-at-sign.example.com").is_err());
/// assert!(Email::parse("a@b@example.com").is_err());
/// assert!(Email::parse("bob@example.com\r\nBcc: eve@example.com").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email {
    address: String,
    at: usize,
}

/// Why a string is not an acceptable email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// Nothing but whitespace.
    #[error("email address is empty")]
    Empty,
    /// No `@` at all.
    #[error("email address must contain an @")]
    MissingAt,
    /// More than one `@` (quoted local parts are not supported).
    #[error("email address must contain exactly one @")]
    MultipleAt,
    /// Nothing before the `@`.
    #[error("the part before the @ is empty")]
    EmptyLocalPart,
    /// Nothing after the `@`.
    #[error("the part after the @ is empty")]
    EmptyDomain,
    /// A whitespace, control, invisible or mail-header special character.
    #[error("email address contains a character that is not allowed: {0:?}")]
    ForbiddenCharacter(char),
    /// The local part is longer than 64 bytes after normalization.
    #[error("the part before the @ is longer than {MAX_LOCAL_PART_BYTES} bytes")]
    LocalPartTooLong,
    /// The address is longer than 254 bytes after normalization.
    #[error("email address is longer than {MAX_ADDRESS_BYTES} bytes")]
    TooLong,
    /// The domain is not a valid internet hostname.
    #[error("the part after the @ is not a valid domain name")]
    InvalidDomain,
}

impl Email {
    /// Normalizes and validates `input`; see the type documentation for the rules.
    ///
    /// # Errors
    ///
    /// An [`EmailError`] naming the first rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if let Some(c) = trimmed.chars().find(|&c| is_forbidden_anywhere(c)) {
            return Err(EmailError::ForbiddenCharacter(c));
        }
        let (local, domain) = match trimmed.split_once('@') {
            None => return Err(EmailError::MissingAt),
            Some((_, domain)) if domain.contains('@') => return Err(EmailError::MultipleAt),
            Some(parts) => parts,
        };
        if local.is_empty() {
            return Err(EmailError::EmptyLocalPart);
        }
        if domain.is_empty() {
            return Err(EmailError::EmptyDomain);
        }

        let local = normalize_local_part(local)?;
        let domain = normalize_domain(domain)?;

        if local.len() > MAX_LOCAL_PART_BYTES {
            return Err(EmailError::LocalPartTooLong);
        }
        let at = local.len();
        let address = format!("{local}@{domain}");
        if address.len() > MAX_ADDRESS_BYTES {
            return Err(EmailError::TooLong);
        }
        Ok(Self { address, at })
    }

    /// The whole normalized address.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The normalized part before the `@`.
    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    /// The domain, in lowercase ASCII (IDNA) form.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }

    /// The normalized address as an owned `String`.
    pub fn into_string(self) -> String {
        self.address
    }

    /// The address on decoy records (`.invalid` is reserved by RFC 2606: it never
    /// receives mail).
    pub(crate) fn decoy() -> Self {
        const DECOY: &str = "nobody@decoy.invalid";
        Self {
            address: DECOY.to_owned(),
            at: "nobody".len(),
        }
    }
}

/// Characters refused anywhere in an address, before and after normalization: whitespace,
/// controls, format characters and everything else that renders as nothing (so two
/// addresses cannot look identical), private-use and unassigned code points (whose
/// normalization a later Unicode version could change).
fn is_forbidden_anywhere(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_whitespace() || c.is_ascii_control();
    }
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    c.is_whitespace()
        || matches!(
            category,
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::Surrogate
                | GeneralCategory::PrivateUse
                | GeneralCategory::Unassigned
                | GeneralCategory::SpaceSeparator
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// Characters that are special in RFC 5322 headers; unquoted local parts cannot hold them,
/// and a `,` or `<` in a recipient is how header injection starts.
fn is_header_special(c: char) -> bool {
    matches!(
        c,
        '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '@' | '[' | '\\' | ']'
    )
}

/// NFKC, lowercase, final sigma folded, NFKC again: the comparison form of a local part.
///
/// `str::to_lowercase` picks `ς` or `σ` from context, so `ΟΔΟΣ` and `ΟΔΟσ` would differ;
/// folding `ς` makes them one. Lowercasing can leave sequences that are not in normal
/// form, and the second NFKC pass makes the result a fixed point.
pub(crate) fn fold_local_part(raw: &str) -> String {
    let lowered = raw.nfkc().collect::<String>().to_lowercase().replace('ς', "σ");
    lowered.nfkc().collect()
}

fn normalize_local_part(raw: &str) -> Result<String, EmailError> {
    let local = fold_local_part(raw);
    // Validate the normalized form: NFKC can turn harmless-looking input into forbidden
    // characters (U+FF20 FULLWIDTH COMMERCIAL AT becomes `@`, U+00A8 becomes a space).
    if let Some(c) = local
        .chars()
        .find(|&c| is_forbidden_anywhere(c) || is_header_special(c))
    {
        return Err(EmailError::ForbiddenCharacter(c));
    }
    Ok(local)
}

fn normalize_domain(raw: &str) -> Result<String, EmailError> {
    let ascii = Uts46::new()
        .to_ascii(raw.as_bytes(), AsciiDenyList::STD3, Hyphens::Check, DnsLength::Verify)
        .map_err(|_| EmailError::InvalidDomain)?;
    // A mail domain needs a dot (`localhost` is not one) and a top-level label that is
    // not all digits (`1.2.3.4` is an address, not a name).
    let top_level = ascii.rsplit('.').next().unwrap_or_default();
    if !ascii.contains('.') || top_level.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EmailError::InvalidDomain);
    }
    Ok(ascii.into_owned())
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Email").field(&self.address).finish()
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.address
    }
}

impl FromStr for Email {
    type Err = EmailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Email {
    type Error = EmailError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.address)
    }
}

/// Deserializing parses, so an `Email` inside a request body is always normalized.
impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(input: &str) -> String {
        Email::parse(input)
            .unwrap_or_else(|e| panic!("{input:?}: {e}"))
            .into_string()
    }

    fn err(input: &str) -> EmailError {
        Email::parse(input).expect_err(input)
    }

    #[test]
    fn trims_and_lowercases() {
        assert_eq!(ok("  Alice@Example.COM\t\n"), "alice@example.com");
        assert_eq!(ok("alice@x.com"), ok(" ALICE@X.com "));
    }

    #[test]
    fn keeps_dots_and_plus_tags() {
        assert_eq!(ok("first.last+tag@gmail.com"), "first.last+tag@gmail.com");
        assert_ne!(ok("firstlast@gmail.com"), ok("first.last@gmail.com"));
    }

    #[test]
    fn idna_domains_are_one_domain() {
        assert_eq!(ok("kurt@bücher.de"), "kurt@xn--bcher-kva.de");
        assert_eq!(ok("kurt@XN--BCHER-KVA.de"), "kurt@xn--bcher-kva.de");
        assert_eq!(ok("kurt@BÜCHER.de"), "kurt@xn--bcher-kva.de");
        // Fullwidth letters in the domain map to ASCII.
        assert_eq!(ok("a@ｅｘａｍｐｌｅ.com"), "a@example.com");
    }

    #[test]
    fn local_part_is_nfkc_and_lowercase() {
        // Kelvin sign, fullwidth letters and the "fi" ligature all normalize.
        assert_eq!(ok("\u{212A}ate@example.com"), "kate@example.com");
        assert_eq!(ok("ＫＡＴＥ@example.com"), "kate@example.com");
        assert_eq!(ok("\u{FB01}sh@example.com"), "fish@example.com");
        // Decomposed and precomposed ü are one address.
        assert_eq!(ok("ju\u{0308}rgen@example.com"), ok("jürgen@example.com"));
        assert_eq!(ok("JÜRGEN@example.com"), "jürgen@example.com");
    }

    #[test]
    fn rejects_structure() {
        assert_eq!(err(""), EmailError::Empty);
        assert_eq!(err("   "), EmailError::Empty);
        assert_eq!(err("alice.example.com"), EmailError::MissingAt);
        assert_eq!(err("a@b@example.com"), EmailError::MultipleAt);
        assert_eq!(err("@example.com"), EmailError::EmptyLocalPart);
        assert_eq!(err("alice@"), EmailError::EmptyDomain);
        // "\"a@b\"@x.com" is valid RFC 5322 but quoted local parts are not supported.
        assert_eq!(err("\"a@b\"@example.com"), EmailError::MultipleAt);
    }

    #[test]
    fn rejects_whitespace_control_and_invisible_characters_inside() {
        assert_eq!(err("al ice@example.com"), EmailError::ForbiddenCharacter(' '));
        assert_eq!(err("alice@exa mple.com"), EmailError::ForbiddenCharacter(' '));
        assert_eq!(err("al\0ice@example.com"), EmailError::ForbiddenCharacter('\0'));
        assert_eq!(
            err("alice@example.com\r\nBcc: x@y.z"),
            EmailError::ForbiddenCharacter('\r')
        );
        assert_eq!(err("ali\nce@example.com"), EmailError::ForbiddenCharacter('\n'));
        assert_eq!(
            err("al\u{00A0}ice@example.com"),
            EmailError::ForbiddenCharacter('\u{A0}')
        );
        assert_eq!(
            err("al\u{200B}ice@example.com"),
            EmailError::ForbiddenCharacter('\u{200B}')
        );
        assert_eq!(
            err("alice\u{202E}@example.com"),
            EmailError::ForbiddenCharacter('\u{202E}')
        );
        assert_eq!(
            err("\u{FEFF}alice@example.com"),
            EmailError::ForbiddenCharacter('\u{FEFF}')
        );
        // Format and default-ignorable characters found by property, not by a hand list.
        for c in [
            '\u{FFF9}',
            '\u{FFFB}',
            '\u{1D173}',
            '\u{1BCA0}',
            '\u{0600}',
            '\u{E0041}',
            '\u{180E}',
            '\u{2064}',
        ] {
            assert_eq!(
                err(&format!("ka{c}te@example.com")),
                EmailError::ForbiddenCharacter(c),
                "{c:?}"
            );
        }
        // Private use and unassigned code points.
        assert_eq!(
            err("a\u{E000}b@example.com"),
            EmailError::ForbiddenCharacter('\u{E000}')
        );
        assert_eq!(
            err("a\u{0378}b@example.com"),
            EmailError::ForbiddenCharacter('\u{0378}')
        );
    }

    #[test]
    fn greek_final_sigma_is_one_letter() {
        assert_eq!(ok("ΟΔΟΣ@example.com"), ok("ΟΔΟσ@example.com"));
        assert_eq!(ok("οδος@example.com"), "οδοσ@example.com");
    }

    #[test]
    fn rejects_header_specials_and_characters_normalization_creates() {
        for c in ['"', '(', ')', ',', ':', ';', '<', '>', '[', '\\', ']'] {
            let input = format!("a{c}b@example.com");
            assert_eq!(err(&input), EmailError::ForbiddenCharacter(c), "{input:?}");
        }
        // U+FF20 FULLWIDTH COMMERCIAL AT normalizes to `@`.
        assert_eq!(err("a\u{FF20}b@example.com"), EmailError::ForbiddenCharacter('@'));
        // U+00A8 DIAERESIS normalizes to a space followed by a combining mark.
        assert_eq!(err("a\u{00A8}b@example.com"), EmailError::ForbiddenCharacter(' '));
    }

    #[test]
    fn rejects_bad_domains() {
        for domain in [
            "localhost",
            "example..com",
            ".example.com",
            "example.com.",
            "-example.com",
            "example-.com",
            "exa_mple.com",
            "exa%mple.com",
            "[127.0.0.1]",
            "127.0.0.1",
            "example.123",
            "xn--.com",
            &format!("{}.com", "a".repeat(64)),
        ] {
            let input = format!("alice@{domain}");
            assert_eq!(err(&input), EmailError::InvalidDomain, "{input:?}");
        }
    }

    #[test]
    fn enforces_lengths_after_normalization() {
        let local64 = "a".repeat(64);
        assert_eq!(ok(&format!("{local64}@example.com")).len(), 64 + 12);
        assert_eq!(err(&format!("{local64}a@example.com")), EmailError::LocalPartTooLong);
        // 32 ligatures are 32 characters typed but 64 bytes once normalized to "fi".
        let ligatures = "\u{FB01}".repeat(33);
        assert_eq!(err(&format!("{ligatures}@example.com")), EmailError::LocalPartTooLong);

        let label = "a".repeat(63);
        let domain = format!("{label}.{label}.{label}.{}", "a".repeat(57)); // 249 bytes
        assert_eq!(ok(&format!("abcd@{domain}")).len(), 254);
        assert_eq!(err(&format!("abcde@{domain}")), EmailError::TooLong);
    }

    #[test]
    fn the_decoy_address_is_a_normalized_address() {
        assert_eq!(Email::parse(Email::decoy().as_str()), Ok(Email::decoy()));
        assert_eq!(Email::decoy().local_part(), "nobody");
    }

    #[test]
    fn literal_characters_survive() {
        // SQL LIKE wildcards and quotes are ordinary characters in a local part.
        assert_eq!(ok("100%_real'o@example.com"), "100%_real'o@example.com");
    }

    #[test]
    fn serde_parses_on_the_way_in() {
        let email: Email = serde_json::from_str("\" Bob@Example.com\"").unwrap();
        assert_eq!(email.as_str(), "bob@example.com");
        assert_eq!(serde_json::to_string(&email).unwrap(), "\"bob@example.com\"");
        assert!(serde_json::from_str::<Email>("\"not an email\"").is_err());
    }

    fn assert_idempotent(input: &str) {
        if let Ok(once) = Email::parse(input) {
            let twice = Email::parse(once.as_str());
            assert_eq!(twice.as_ref(), Ok(&once), "input {input:?}");
            assert_eq!(
                twice.map(|e| (e.local_part().len(), e.domain().len())).ok(),
                Some((once.local_part().len(), once.domain().len()))
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn parse_is_idempotent_on_arbitrary_strings(input in "\\PC{0,40}") {
            assert_idempotent(&input);
        }

        /// Arbitrary printable Unicode in the local part, with domains that parse: most
        /// inputs are accepted, so idempotency is checked on real addresses.
        #[test]
        fn parse_is_idempotent_on_arbitrary_local_parts(
            local in "\\PC{1,24}",
            domain in prop::sample::select(vec!["example.com", "Bücher.DE", "xn--bcher-kva.de", "ＥＸＡＭＰＬＥ.org", "mail.例え.jp"]),
        ) {
            assert_idempotent(&format!("{local}@{domain}"));
        }

        #[test]
        fn parse_is_idempotent_on_address_shaped_strings(
            pad_left in "[ \t]{0,2}",
            local in "[a-zA-Z0-9._+%'\u{212A}\u{FB01}\u{00C0}-\u{024F}\u{0370}-\u{03FF}\u{0400}-\u{04FF}\u{FF21}-\u{FF5A}\u{0300}-\u{036F}]{1,30}",
            domain in "[a-zA-Z0-9\u{00E0}-\u{00FF}\u{FF41}-\u{FF5A}-]{1,20}\\.[a-zA-Z]{2,6}",
            pad_right in "[ \r\n]{0,2}",
        ) {
            let input = format!("{pad_left}{local}@{domain}{pad_right}");
            assert_idempotent(&input);
        }

        #[test]
        fn case_and_whitespace_variants_are_one_address(
            local in "[a-z0-9.+]{1,20}",
            domain in "[a-z]{1,10}\\.(com|org|de)",
            upper in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let canonical = Email::parse(&format!("{local}@{domain}")).unwrap();
            let varied: String = format!("{local}@{domain}")
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            prop_assert_eq!(Email::parse(&format!("  {varied}\t")).unwrap(), canonical);
        }
    }
}
