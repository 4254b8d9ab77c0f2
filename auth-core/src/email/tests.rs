//! Tests of email parsing, normalization and the rules for new addresses.

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

#[test]
fn dots_only_between_atoms() {
    for local in [".lead", "a..b", "a.", ".", "..", "a...b", ".a.", "a.b..c"] {
        let input = format!("{local}@example.com");
        assert_eq!(err(&input), EmailError::MisplacedDot, "{input:?}");
    }
    // After normalization: U+FF0E FULLWIDTH FULL STOP is a dot once NFKC ran.
    assert_eq!(err("a\u{FF0E}@example.com"), EmailError::MisplacedDot);
    assert_eq!(ok("a.b.c@example.com"), "a.b.c@example.com");
}

#[test]
fn refuses_characters_mail_cannot_be_addressed_to() {
    for (local, bad) in [
        ("\u{1F600}", '\u{1F600}'),
        ("\u{1F600}\u{1F601}", '\u{1F600}'),
        ("a\u{1F4E7}b", '\u{1F4E7}'),
        ("a\u{20AC}b", '\u{20AC}'),
        ("a\u{2014}b", '\u{2014}'),
        ("\u{A1}hola", '\u{A1}'),
        ("a\u{3002}b", '\u{3002}'),
        ("a\u{2665}", '\u{2665}'),
        // No precomposed q-acute: the accent stays a separate, non-alphabetic mark.
        ("q\u{301}", '\u{301}'),
        // The Devanagari virama is not alphabetic: lettre refuses it, so we must too.
        ("\u{939}\u{93F}\u{928}\u{94D}\u{926}\u{940}", '\u{94D}'),
    ] {
        let input = format!("{local}@example.com");
        assert_eq!(err(&input), EmailError::UnmailableCharacter(bad), "{input:?}");
    }
}

#[test]
fn refuses_combining_marks_with_no_letter_before_them() {
    for (local, mark) in [
        ("\u{301}", '\u{301}'),
        ("\u{301}\u{308}\u{302}", '\u{301}'),
        ("a.\u{301}b", '\u{301}'),
        // An alphabetic mark (Arabic fatha) is atext to lettre, but alone it is no word.
        ("\u{64E}", '\u{64E}'),
        ("\u{64E}\u{64F}", '\u{64E}'),
    ] {
        let input = format!("{local}@example.com");
        assert_eq!(err(&input), EmailError::LeadingCombiningMark(mark), "{input:?}");
    }
}

#[test]
fn accepts_every_kind_of_mailable_local_part() {
    for (input, normalized) in [
        ("first.last+tag@example.com", "first.last+tag"),
        ("!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~"),
        ("o'brien@example.com", "o'brien"),
        ("12345@example.com", "12345"),
        ("Jos\u{E9}@example.com", "jos\u{E9}"),
        ("jose\u{301}@example.com", "jos\u{E9}"),
        ("J\u{FC}rgen.Gro\u{DF}@example.com", "j\u{FC}rgen.gro\u{DF}"),
        (
            "\u{3B4}\u{3BF}\u{3BA}\u{3B9}\u{3BC}\u{3AE}@example.com",
            "\u{3B4}\u{3BF}\u{3BA}\u{3B9}\u{3BC}\u{3AE}",
        ),
        ("\u{7528}\u{6237}@example.com", "\u{7528}\u{6237}"),
        // Devanagari vowel signs are alphabetic marks after a letter.
        ("\u{930}\u{93E}\u{92E}@example.com", "\u{930}\u{93E}\u{92E}"),
        (
            "\u{5E9}\u{5DC}\u{5D5}\u{5DD}@example.com",
            "\u{5E9}\u{5DC}\u{5D5}\u{5DD}",
        ),
    ] {
        let email = Email::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(email.local_part(), normalized, "{input:?}");
    }
}

#[test]
fn existing_addresses_keep_only_the_identity_rules() {
    for (input, normalized) in [
        (" .Lead@example.com", ".lead@example.com"),
        ("a..b@example.com", "a..b@example.com"),
        ("a.@example.com", "a.@example.com"),
        ("\u{1F600}@example.com", "\u{1F600}@example.com"),
        ("\u{301}@example.com", "\u{301}@example.com"),
        ("p\u{430}ypal@example.com", "p\u{430}ypal@example.com"),
    ] {
        assert!(Email::parse(input).is_err(), "{input:?}");
        let existing = Email::parse_existing(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(existing.as_str(), normalized);
        assert_eq!(Email::parse_existing(existing.as_str()), Ok(existing.clone()));
        // Tokens and stored rows carry such addresses: they deserialize.
        let json = serde_json::to_string(&existing).unwrap();
        assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), existing);
    }
    // The structural rules still hold.
    assert_eq!(Email::parse_existing("a@b@example.com"), Err(EmailError::MultipleAt));
    assert_eq!(
        Email::parse_existing("a\u{200B}@example.com"),
        Err(EmailError::ForbiddenCharacter('\u{200B}'))
    );
    assert_eq!(Email::parse_existing("a@localhost"), Err(EmailError::InvalidDomain));
}

fn mixed(part: &str) -> EmailError {
    EmailError::MixedScripts { part: part.to_owned() }
}

#[test]
fn refuses_a_local_part_that_mixes_scripts() {
    // Cyrillic а (U+0430) among Latin letters: a look-alike of paypal@example.com.
    assert_eq!(err("p\u{430}yp\u{430}l@example.com"), mixed("p\u{430}yp\u{430}l"));
    assert_eq!(ok("paypal@example.com"), "paypal@example.com");
    // Greek omicron in Latin, Latin o in Cyrillic, Greek with Cyrillic.
    assert_eq!(err("g\u{3BF}\u{3BF}gle@example.com"), mixed("g\u{3BF}\u{3BF}gle"));
    assert_eq!(err("\u{441}o\u{441}@example.com"), mixed("\u{441}o\u{441}"));
    assert_eq!(err("\u{3B1}\u{431}@example.com"), mixed("\u{3B1}\u{431}"));
    // The check spans dots: each atom single-script is not enough.
    assert_eq!(
        err("john.\u{438}\u{432}\u{430}\u{43D}@example.com"),
        mixed("john.\u{438}\u{432}\u{430}\u{43D}")
    );
    // Latin with Cyrillic and Han is no East Asian combination.
    assert_eq!(err("a\u{431}\u{5C71}@example.com"), mixed("a\u{431}\u{5C71}"));
    // Checked after NFKC: fullwidth Latin becomes Latin, so this is one script.
    assert_eq!(ok("\u{FF50}aypal@example.com"), "paypal@example.com");
}

#[test]
fn refuses_a_domain_label_that_mixes_scripts() {
    assert_eq!(err("alice@p\u{430}ypal.com"), mixed("p\u{430}ypal"));
    // Typed as punycode, it is the same label: decoded before the check.
    let ascii = Email::parse_existing("alice@p\u{430}ypal.com").unwrap();
    assert!(ascii.domain().starts_with("xn--"), "{ascii}");
    assert_eq!(err(ascii.as_str()), mixed("p\u{430}ypal"));
    assert_eq!(err(&format!("alice@mail.{}", ascii.domain())), mixed("p\u{430}ypal"));
    // Each label on its own: a Cyrillic label beside a Latin one is fine.
    assert_eq!(
        Email::parse("ivan@\u{43F}\u{43E}\u{447}\u{442}\u{430}.example.com").map(|e| e.domain().to_owned()),
        Ok("xn--80a1acny.example.com".to_owned())
    );
}

#[test]
fn one_script_local_parts_are_accepted_even_when_they_look_like_another() {
    // Whole-script confusables are not covered: all Cyrillic, this looks like `paypal`.
    assert_eq!(
        ok("\u{440}\u{430}\u{443}\u{440}\u{430}\u{4CF}@example.com"),
        "\u{440}\u{430}\u{443}\u{440}\u{430}\u{4CF}@example.com"
    );
    assert_eq!(
        ok("\u{418}\u{432}\u{430}\u{43D}.\u{41F}\u{435}\u{442}\u{440}\u{43E}\u{432}@example.com"),
        "\u{438}\u{432}\u{430}\u{43D}.\u{43F}\u{435}\u{442}\u{440}\u{43E}\u{432}@example.com"
    );
    // Digits and atext punctuation are Common: they go with any script.
    assert_eq!(
        ok("\u{438}\u{432}\u{430}\u{43D}+1990@example.com"),
        "\u{438}\u{432}\u{430}\u{43D}+1990@example.com"
    );
    assert_eq!(ok("j\u{FC}rgen_1990@example.com"), "j\u{FC}rgen_1990@example.com");
}

#[test]
fn east_asian_writing_systems_mix_as_they_are_written() {
    for local in [
        // Japanese: Han, Hiragana and Katakana together.
        "\u{5C71}\u{7530}\u{305F}\u{308D}\u{3046}",
        "\u{30E4}\u{30DE}\u{30C0}\u{5C71}\u{7530}\u{305F}\u{308D}\u{3046}",
        // Korean: Hangul with Han.
        "\u{AE40}\u{CCA0}\u{C218}\u{91D1}",
        // Han with Bopomofo.
        "\u{5F35}\u{3113}\u{3124}",
        // Highly Restrictive also allows Latin beside each of them.
        "tar\u{14D}\u{5C71}\u{7530}",
        "kim\u{AE40}",
        "zhang\u{5F35}\u{3113}",
    ] {
        let input = format!("{local}@example.jp");
        assert_eq!(
            Email::parse(&input).map(|e| e.local_part().to_owned()),
            Ok(local.to_owned()),
            "{input:?}"
        );
    }
    // But not Japanese with Korean.
    assert_eq!(err("\u{305F}\u{AE40}@example.com"), mixed("\u{305F}\u{AE40}"));
}

#[test]
fn the_restriction_level_of_unicode_security_would_refuse_plain_plus_tags() {
    // Why `is_highly_restrictive` applies only the script part of the level: the
    // crate's detection also applies the identifier profile, which has no `+`.
    use unicode_security::{RestrictionLevel, RestrictionLevelDetection};
    assert_eq!("first+tag".detect_restriction_level(), RestrictionLevel::Unrestricted);
    assert!(is_highly_restrictive("first+tag"));
    assert_eq!(
        "p\u{430}ypal".detect_restriction_level(),
        RestrictionLevel::MinimallyRestrictive
    );
    assert!(!is_highly_restrictive("p\u{430}ypal"));
}

#[test]
fn plain_ascii_is_one_script() {
    assert_eq!(
        ok("Alice.Smith+News_2024@Example.COM"),
        "alice.smith+news_2024@example.com"
    );
    assert_eq!(ok("x@xn--bcher-kva.de"), "x@xn--bcher-kva.de");
    assert!(
        mixed("p\u{430}ypal")
            .to_string()
            .contains("mixes letters of different scripts")
    );
}

#[test]
fn error_messages_say_what_is_wrong() {
    assert!(EmailError::MisplacedDot.to_string().contains("two dots in a row"));
    let unmailable = EmailError::UnmailableCharacter('\u{1F600}').to_string();
    assert!(
        unmailable.contains("'\u{1F600}'") && unmailable.contains("!#$%&'*+-/=?^_`{|}~"),
        "{unmailable}"
    );
    assert!(
        EmailError::LeadingCombiningMark('\u{301}')
            .to_string()
            .contains("combining mark")
    );
}

fn assert_idempotent(input: &str) {
    if let Ok(once) = Email::parse(input) {
        let twice = Email::parse(once.as_str());
        assert_eq!(twice.as_ref(), Ok(&once), "input {input:?}");
        assert_eq!(
            twice.map(|e| (e.local_part().len(), e.domain().len())).ok(),
            Some((once.local_part().len(), once.domain().len()))
        );
        // The two levels normalize alike: a new address is found by the lenient parse.
        assert_eq!(Email::parse_existing(input).as_ref(), Ok(&once), "input {input:?}");
    }
    if let Ok(once) = Email::parse_existing(input) {
        assert_eq!(
            Email::parse_existing(once.as_str()).as_ref(),
            Ok(&once),
            "input {input:?}"
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
        local in "[a-z0-9+]{1,10}(\\.[a-z0-9+]{1,9})?",
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

/// The full parse of the identity rules, without the shortcut.
fn identity_parse(input: &str) -> Result<Email, EmailError> {
    Email::parse_with(input, Rules::Identity).0
}

#[test]
fn addresses_already_in_normal_form_skip_the_unicode_tables() {
    for input in [
        "ada@example.com",
        "first.last+tag@mail.example.co.uk",
        "o'neil@a-b.de",
        "1@2.example",
    ] {
        let fast = Email::already_normal_ascii(input).unwrap_or_else(|| panic!("{input:?} took the full parse"));
        assert_eq!(Ok(fast), identity_parse(input), "{input:?}");
    }
    // What normalization could change, or IDNA must check, takes the full parse.
    for input in [
        "Ada@example.com",
        "ada@Example.com",
        " ada@example.com",
        "ada@xn--bcher-kva.de",
        "ada@ab--c.de",
        "ada@-a.de",
        "ada@example.com.",
        "ada@localhost",
        "ada@1.2.3.4",
        "a\"b@example.com",
        "kurt@bücher.de",
        "a@b@example.com",
    ] {
        assert_eq!(Email::already_normal_ascii(input), None, "{input:?}");
    }
    let long_label = "a".repeat(64);
    assert_eq!(Email::already_normal_ascii(&format!("ada@{long_label}.com")), None);
    assert!(identity_parse(&format!("ada@{long_label}.com")).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8192))]

    /// Every address the shortcut takes is exactly what the full parse answers for it.
    #[test]
    fn the_normal_form_shortcut_agrees_with_the_full_parse_on_ascii(
        input in "[a-zA-Z0-9.@_+!#~' \"(),:;<>\\[\\]\\\\-]{0,40}",
    ) {
        if let Some(fast) = Email::already_normal_ascii(&input) {
            prop_assert_eq!(Ok(fast), identity_parse(&input));
        }
    }

    /// The same near the boundaries the shortcut checks itself: label and address
    /// lengths, hyphen places, numeric top-level labels.
    #[test]
    fn the_normal_form_shortcut_agrees_with_the_full_parse_near_its_limits(
        local in "[a-z0-9._+-]{0,70}|[a-zA-Z0-9.\"(@]{1,8}",
        labels in proptest::collection::vec("[a-z0-9-]{0,66}|[a-zA-Z0-9-]{1,8}|xn--[a-z0-9-]{0,8}|[0-9]{1,3}", 1..6),
    ) {
        let input = format!("{local}@{}", labels.join("."));
        if let Some(fast) = Email::already_normal_ascii(&input) {
            prop_assert_eq!(Ok(fast), identity_parse(&input));
        }
    }
}
