//! Email addresses, normalized once so that no code path can compare raw strings.
//!
//! Two levels of rules: [`Email::parse`] takes only addresses a new account may have
//! (mail can reach them, and they do not mix scripts the way look-alikes do);
//! [`Email::parse_existing`] applies the normalization and the structural rules alone, so
//! accounts created before a rule was added still load, log in and are found.

use std::fmt;
use std::str::FromStr;

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory, GeneralCategoryGroup};
use icu_properties::{CodePointMapData, CodePointSetData};
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;
use unicode_script::Script;
use unicode_security::MixedScript;
use unicode_security::mixed_script::AugmentedScriptSet;

/// Longest local part, in bytes (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_BYTES: usize = 64;
/// Longest address, in bytes (RFC 5321 path limit minus the angle brackets).
pub const MAX_ADDRESS_BYTES: usize = 254;

/// The ASCII characters besides letters and digits that RFC 5322 `atext` allows unquoted.
const ASCII_ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
/// Longest domain name in its ASCII form, without a trailing dot (RFC 1035 §2.3.4, as
/// IDNA's `VerifyDnsLength` counts it).
const MAX_DNS_NAME_BYTES: usize = 253;
/// Longest label of a domain name (RFC 1035 §2.3.4).
const MAX_DNS_LABEL_BYTES: usize = 63;

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
/// # Only addresses mail can reach
///
/// The normalized local part must be an RFC 5322 `dot-atom` (RFC 6531 for UTF-8): atoms
/// separated by single dots, none at either end, each character an ASCII letter or digit,
/// one of ``!#$%&'*+-/=?^_`{|}~``, or a non-ASCII character that is alphabetic or numeric
/// (`char::is_alphanumeric`). That is a subset of what lettre's `Address` (through the
/// `email_address` crate) accepts, so every account can be mailed; a combining mark
/// that is not itself alphabetic (an accent with no precomposed form, a virama, a Thai
/// tone mark) is refused for the same reason. No atom may begin with a combining mark,
/// which would have no letter to attach to (RFC 5891 §4.2.3.2 asks the same of domain
/// labels). Quoted local parts (`"john doe"@example.com`) are not supported.
///
/// # No mixed-script look-alikes
///
/// The local part and each domain label (in its Unicode form, so `xn--` labels are
/// decoded first) must be *Highly Restrictive* in the sense of UTS #39 §5.2: its
/// characters share one script (digits and punctuation go with any), or are Latin plus
/// one East Asian writing system — Han with Hiragana and Katakana (Japanese), Han with
/// Hangul (Korean) or Han with Bopomofo. So `pаypаl@example.com` with a Cyrillic `а` is
/// refused beside `paypal@example.com`, while `山田たろう`, `김철수`, `jürgen` and
/// `tarō山田` are accepted. The level's identifier-profile part (UTS #39 §3.1) is
/// not applied: the mail rules above decide which characters an address may hold.
/// Whole-script confusables are *not* covered: `раураӏ` written entirely in Cyrillic
/// is one script, accepted, and looks like `paypal`; telling those apart needs the
/// UTS #39 confusable skeletons and a list of protected names, which is not done here.
///
/// Parsing is idempotent: `Email::parse(e.as_str())` returns `e` for every `Email` it
/// returned.
///
/// ```
/// use auth_core::{Email, EmailError};
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
/// assert_eq!(Email::parse("a..b@example.com"), Err(EmailError::MisplacedDot));
/// // A Cyrillic `а` among Latin letters.
/// assert!(matches!(Email::parse("p\u{430}ypal@example.com"), Err(EmailError::MixedScripts { .. })));
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
    /// The local part starts or ends with a dot, or has two in a row: mail transports
    /// refuse such an address unquoted (RFC 5322 `dot-atom`).
    #[error("the part before the @ cannot start or end with a dot or have two dots in a row")]
    MisplacedDot,
    /// A character of the local part that an unquoted address cannot carry: neither an
    /// ASCII letter, digit or one of ``!#$%&'*+-/=?^_`{|}~``, nor a non-ASCII letter or
    /// digit (an emoji, a symbol, a punctuation mark, a non-alphabetic combining mark).
    #[error(
        "the part before the @ contains {0:?}, which mail cannot be addressed to: use letters, digits \
         and !#$%&'*+-/=?^_`{{|}}~ between single dots"
    )]
    UnmailableCharacter(char),
    /// The local part, or a part of it between dots, begins with a combining mark, which
    /// has no letter to attach to.
    #[error("the part before the @ has the combining mark {0:?} at the start of a word, with no letter to attach to")]
    LeadingCombiningMark(char),
    /// The local part or a domain label mixes scripts the way a look-alike of another
    /// address does (it is not UTS #39 *Highly Restrictive*).
    #[error("{part:?} mixes letters of different scripts, as look-alikes of other addresses do")]
    MixedScripts {
        /// The normalized local part, or the domain label in its Unicode form.
        part: String,
    },
}

/// An address typed for a new account, parsed once by both levels of rules.
#[derive(Debug, Clone)]
pub(crate) struct NewAccountAddress {
    /// As [`Email::parse_existing`] reads it: how an existing account with this address
    /// is found, and whom a refused registration's event is about.
    pub(crate) identity: Option<Email>,
    /// As [`Email::parse`] reads it: the address the new account gets, or why it cannot.
    pub(crate) new_address: Result<Email, EmailError>,
}

/// Which rules a parse applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Normalization and the structural rules: what identifies an account.
    Identity,
    /// Those, and the rules for the address of a new account (mailable, single script).
    NewAddress,
}

impl Email {
    /// Normalizes and validates `input` with every rule (see the type documentation): the
    /// address a new account may have.
    ///
    /// # Errors
    ///
    /// An [`EmailError`] naming the first rule the input breaks.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        Self::parse_for_new_account(input).new_address
    }

    /// Normalizes `input` like [`Email::parse`] and applies its structural rules (one `@`,
    /// no forbidden characters, lengths, a valid domain), but not the rules that only
    /// decide whether a new account may take the address: mailable dot-atom, single
    /// script. For addresses that may already belong to an account created before those
    /// rules: stored rows, token claims, logins and password-reset requests. It never
    /// finds another account than `parse` would, since the normalization is the same.
    ///
    /// ```
    /// use auth_core::Email;
    ///
    /// assert!(Email::parse(".lead@example.com").is_err());
    /// assert_eq!(Email::parse_existing(" .Lead@example.com").unwrap().as_str(), ".lead@example.com");
    /// ```
    ///
    /// # Errors
    ///
    /// An [`EmailError`] naming the first structural rule the input breaks.
    pub fn parse_existing(input: &str) -> Result<Self, EmailError> {
        // Stored rows and token claims hold addresses this function already normalized,
        // and every authenticated request reads one or two of them: an address already
        // in its simplest normal form is recognised without Unicode tables.
        if let Some(email) = Self::already_normal_ascii(input) {
            return Ok(email);
        }
        Self::parse_with(input, Rules::Identity).0
    }

    /// `input` as it is, when it is plain ASCII that [`parse_existing`](Self::parse_existing)
    /// would return unchanged: a lowercase local part of `atext` and dots, and a domain of
    /// lowercase LDH labels without `--` in the third and fourth places (so no `xn--`
    /// label, whose decoding IDNA would check). `None` for anything else, which the full
    /// parse decides; a property test checks that every `Some` is what it answers.
    fn already_normal_ascii(input: &str) -> Option<Self> {
        let (local, domain) = input.split_once('@')?;
        let local_ok = !local.is_empty()
            && local.len() <= MAX_LOCAL_PART_BYTES
            && local.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'.'
                    || ASCII_ATEXT_SPECIALS.as_bytes().contains(&b)
            });
        if !local_ok || input.len() > MAX_ADDRESS_BYTES || domain.len() > MAX_DNS_NAME_BYTES {
            return None;
        }
        let mut labels = 0;
        let mut top_level_all_digits = false;
        for label in domain.split('.') {
            let bytes = label.as_bytes();
            let ldh = !bytes.is_empty()
                && bytes.len() <= MAX_DNS_LABEL_BYTES
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && bytes.first() != Some(&b'-')
                && bytes.last() != Some(&b'-')
                && bytes.get(2..4) != Some(b"--".as_slice());
            if !ldh {
                return None;
            }
            labels += 1;
            top_level_all_digits = bytes.iter().all(u8::is_ascii_digit);
        }
        (labels >= 2 && !top_level_all_digits).then(|| Self {
            address: input.to_owned(),
            at: local.len(),
        })
    }

    /// Parses an address typed for a new account once, by both levels of rules: what
    /// [`Email::parse`] and [`Email::parse_existing`] would each return.
    pub(crate) fn parse_for_new_account(input: &str) -> NewAccountAddress {
        let (identity, broken_rule) = Self::parse_with(input, Rules::NewAddress);
        // The new-address result is the first error in the order of the rules: a rule of
        // its own broken before a structural one, or else the structural one.
        let new_address = match (&identity, broken_rule) {
            (_, Some(rule)) => Err(rule),
            (Ok(email), None) => Ok(email.clone()),
            (Err(error), None) => Err(error.clone()),
        };
        NewAccountAddress {
            identity: identity.ok(),
            new_address,
        }
    }

    /// The identity parse, and (for [`Rules::NewAddress`]) the first new-address rule the
    /// input breaks, if it breaks one before any structural rule fails.
    fn parse_with(input: &str, rules: Rules) -> (Result<Self, EmailError>, Option<EmailError>) {
        let mut broken_rule = None;
        let identity = Self::parse_identity(input, |local, domain| {
            if rules == Rules::NewAddress && broken_rule.is_none() {
                let check = match domain {
                    None => check_dot_atom(local),
                    Some(domain) => check_scripts(local, domain),
                };
                broken_rule = check.err();
            }
        });
        (identity, broken_rule)
    }

    /// The normalization and the structural rules, calling `new_address_rules` where the
    /// rules for a new address apply: with the local part alone once it is normalized,
    /// then with the normalized domain too.
    fn parse_identity(input: &str, mut new_address_rules: impl FnMut(&str, Option<&str>)) -> Result<Self, EmailError> {
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
        new_address_rules(&local, None);
        let domain = normalize_domain(domain)?;
        new_address_rules(&local, Some(&domain));

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

/// The local part as mail transports accept it unquoted: an RFC 5322 `dot-atom` whose
/// characters are RFC 6531 `atext`, restricted to what lettre's `Address` also accepts
/// (`email_address` counts a non-ASCII character as `atext` when it is
/// `char::is_alphanumeric`). Checked on the normalized form, which is what is sent.
fn check_dot_atom(local: &str) -> Result<(), EmailError> {
    for atom in local.split('.') {
        let Some(first) = atom.chars().next() else {
            return Err(EmailError::MisplacedDot);
        };
        if GeneralCategoryGroup::Mark.contains(CodePointMapData::<GeneralCategory>::new().get(first)) {
            return Err(EmailError::LeadingCombiningMark(first));
        }
        if let Some(c) = atom.chars().find(|&c| !is_mailable_atext(c)) {
            return Err(EmailError::UnmailableCharacter(c));
        }
    }
    Ok(())
}

fn is_mailable_atext(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || ASCII_ATEXT_SPECIALS.contains(c)
    } else {
        c.is_alphanumeric()
    }
}

/// Refuses a local part or domain label that is not UTS #39 Highly Restrictive.
fn check_scripts(local: &str, ascii_domain: &str) -> Result<(), EmailError> {
    if !is_highly_restrictive(local) {
        return Err(EmailError::MixedScripts { part: local.to_owned() });
    }
    // Scripts are a property of the Unicode form: `xn--pypal-4ve` is `pаypal` with a
    // Cyrillic `а`. The domain was already validated, so decoding cannot fail; if it
    // did, the undecoded ASCII label would be checked, which is one script.
    let (unicode, _) = Uts46::new().to_unicode(ascii_domain.as_bytes(), AsciiDenyList::STD3, Hyphens::Check);
    match unicode.split('.').find(|label| !is_highly_restrictive(label)) {
        Some(label) => Err(EmailError::MixedScripts { part: label.to_owned() }),
        None => Ok(()),
    }
}

/// UTS #39 §5.2 Highly Restrictive, by augmented script sets (`Common` and `Inherited`
/// characters go with every script): one script, or Latin plus Han with Bopomofo,
/// Japanese or Korean. `detect_restriction_level` is not used because it also applies
/// the identifier profile, which refuses `+`, `'` and other `atext` that addresses hold,
/// and reports those as `Unrestricted`, indistinguishable from a real script mix.
fn is_highly_restrictive(text: &str) -> bool {
    if text.is_single_script() {
        return true;
    }
    let mut beside_latin = AugmentedScriptSet::default();
    for c in text.chars() {
        let set = AugmentedScriptSet::for_char(c);
        if !set.base.contains_script(Script::Latin) {
            beside_latin.intersect_with(set);
        }
    }
    beside_latin.hanb || beside_latin.jpan || beside_latin.kore
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

/// Deserializing parses with [`Email::parse_existing`], so a deserialized `Email` is always
/// normalized. It reads addresses that may already have an account (token claims, stored
/// data): an access token issued to an account created before the new-address rules must
/// still verify. A new account's address is checked by `AuthService::register`.
impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse_existing(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
