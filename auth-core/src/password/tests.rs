//! Tests of passwords and the password policy.

use super::*;
use proptest::prelude::*;

fn check(policy: &PasswordPolicy, password: &str) -> Result<(), PolicyViolation> {
    policy.check(&Password::new(password), None)
}

#[test]
fn debug_never_shows_the_password() {
    let password = Password::new("hunter2-secret");
    assert_eq!(format!("{password:?}"), "Password([redacted])");
    assert_eq!(format!("{:#?}", Some(password)), "Some(\n    Password([redacted]),\n)");
}

#[test]
fn passwords_are_never_trimmed() {
    let password = Password::new("  spaced out  ");
    assert_eq!(password.expose_secret(), "  spaced out  ");
    assert_eq!(password.normalized().as_str(), "  spaced out  ");
}

#[test]
fn deserializes_from_a_json_string() {
    let password: Password = serde_json::from_str("\"s3cret pass\"").unwrap();
    assert_eq!(password.expose_secret(), "s3cret pass");
}

#[test]
fn the_bundled_list_has_at_least_ten_thousand_entries() {
    assert!(COMMON_PASSWORDS.len() >= 10_000, "{}", COMMON_PASSWORDS.len());
    assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.trim().to_lowercase()));
}

#[test]
fn minimum_length_counts_code_points_after_nfkc() {
    let policy = PasswordPolicy::default();
    assert_eq!(check(&policy, "7-chars"), Err(PolicyViolation::TooShort { min: 8 }));
    assert_eq!(check(&policy, "8-chars!"), Ok(()));
    // Eight code points, but 16 bytes.
    assert_eq!(check(&policy, "äöüßéèñç"), Ok(()));
    // Seven characters typed; the "ﬃ" ligature becomes three letters under NFKC.
    assert_eq!(check(&policy, "wa\u{FB03}le!"), Ok(()));
    // Eight code points typed, seven after NFKC composes "e" + combining acute.
    assert_eq!(
        check(&policy, "cafe\u{0301}-12"),
        Err(PolicyViolation::TooShort { min: 8 })
    );
}

#[test]
fn nist_single_factor_minimum_is_one_setting() {
    let policy = PasswordPolicy::default().with_min_length(NIST_SINGLE_FACTOR_MIN_LENGTH);
    assert_eq!(
        check(&policy, "fourteen-chars"),
        Err(PolicyViolation::TooShort { min: 15 })
    );
    assert_eq!(check(&policy, "fifteen-chars!!"), Ok(()));
}

#[test]
fn maximum_length_is_checked_and_cheap_for_huge_input() {
    let policy = PasswordPolicy::default();
    // Eight-character pieces that differ: a repetition would be refused for that.
    let at_limit: String = (0..32).map(|i| format!("word{i:03}-")).collect();
    assert_eq!(at_limit.chars().count(), 256);
    assert_eq!(check(&policy, &at_limit), Ok(()));
    assert_eq!(
        check(&policy, &format!("{at_limit}!")),
        Err(PolicyViolation::TooLong { max: 256 })
    );
    let huge = "a".repeat(10 * 1024 * 1024);
    assert_eq!(check(&policy, &huge), Err(PolicyViolation::TooLong { max: 256 }));
    assert!(policy.exceeds_max_length(&Password::new(huge)));
    assert_eq!(PasswordPolicy::default().with_max_length(10).max_length(), 64);
}

#[test]
fn rejects_common_passwords_case_insensitively() {
    let policy = PasswordPolicy::default();
    for common in [
        "password",
        "PassWord1",
        "qwertyuiop",
        "iloveyou",
        " 12345678 ",
        "Password123",
    ] {
        assert_eq!(check(&policy, common), Err(PolicyViolation::Common), "{common:?}");
    }
    let lax = PasswordPolicy::default().with_common_password_check(false);
    assert_eq!(check(&lax, "password"), Ok(()));
}

#[test]
fn rejects_the_email_and_its_local_part() {
    let policy = PasswordPolicy::default();
    let email = Email::parse("Jane.Doe@Example.com").unwrap();
    let check_for = |p: &str| policy.check(&Password::new(p), Some(&email));
    assert_eq!(check_for("jane.doe@example.com"), Err(PolicyViolation::SameAsEmail));
    assert_eq!(check_for("JANE.DOE"), Err(PolicyViolation::SameAsEmail));
    // Not the email, but built from it: the context-word rule refuses it.
    assert_eq!(check_for("jane.doe-example"), Err(PolicyViolation::ContextWords));

    let idn = Email::parse("Jürgen.Groß@Bücher.de").unwrap();
    let check_idn = |p: &str| policy.check(&Password::new(p), Some(&idn));
    assert_eq!(check_idn("jürgen.groß@bücher.de"), Err(PolicyViolation::SameAsEmail));
    assert_eq!(
        check_idn("JÜRGEN.GROß@xn--bcher-kva.de"),
        Err(PolicyViolation::SameAsEmail)
    );
    assert_eq!(check_idn("JU\u{0308}RGEN.GROß"), Err(PolicyViolation::SameAsEmail));
}

#[test]
fn no_composition_rules() {
    let policy = PasswordPolicy::default();
    assert_eq!(check(&policy, "all lowercase words here"), Ok(()));
    assert_eq!(check(&policy, "вишневый сад"), Ok(()));
    assert_eq!(check(&policy, "🦀🐙🦑🐢🦞🐠🐡🐳"), Ok(()));
}

#[test]
fn error_messages_name_the_rule() {
    assert_eq!(
        PolicyViolation::TooShort { min: 8 }.to_string(),
        "password must be at least 8 characters long"
    );
    assert_eq!(
        PolicyViolation::TooLong { max: 256 }.to_string(),
        "password must be at most 256 characters long"
    );
    assert!(PolicyViolation::Common.to_string().contains("too common"));
    assert!(PolicyViolation::SameAsEmail.to_string().contains("email"));
    assert_eq!(
        PolicyViolation::Repetitive.to_string(),
        "the password repeats a shorter sequence"
    );
    assert_eq!(
        PolicyViolation::Sequential.to_string(),
        "the password is a sequence of consecutive characters"
    );
    assert_eq!(
        PolicyViolation::ContextWords.to_string(),
        "the password is built from the account's email or the service's name"
    );
}

#[test]
fn the_issue_examples_are_refused_by_the_rule_they_break() {
    let policy = PasswordPolicy::default();
    let email = Email::parse("jonathan@example.com").unwrap();
    for (password, violation) in [
        ("passwordpassword", PolicyViolation::Repetitive),
        ("123456789012345", PolicyViolation::Sequential),
        ("aaaaaaaaaaaaaaaa", PolicyViolation::Repetitive),
        ("abcdefghijklmnop", PolicyViolation::Sequential),
        ("                ", PolicyViolation::Repetitive),
        ("jonathan!!", PolicyViolation::ContextWords),
    ] {
        assert_eq!(
            policy.check(&Password::new(password), Some(&email)),
            Err(violation),
            "{password:?}"
        );
    }
}

#[test]
fn repetitions_of_a_shorter_unit_are_refused() {
    let policy = PasswordPolicy::default();
    for repeated in [
        "abcabcabc",
        "PassWordPASSWORD",
        "abcabcab",
        "121212121212",
        "🦀🦀🦀🦀🦀🦀🦀🦀",
        "\t\t\t\t\t\t\t\t",
        "correct horse correct horse ",
    ] {
        assert_eq!(
            check(&policy, repeated),
            Err(PolicyViolation::Repetitive),
            "{repeated:?}"
        );
    }
}

#[test]
fn sequences_up_or_down_in_runs_of_three_or_more_are_refused() {
    let policy = PasswordPolicy::default();
    for sequence in [
        "zyxwvutsrq",
        "AbCdEfGhIjKl",
        "7890123456789",
        "3210987654321",
        "1234abcd5678",
        "abcdefgh87654321",
        "!\"#$%&'()*+,",
    ] {
        assert_eq!(
            check(&policy, sequence),
            Err(PolicyViolation::Sequential),
            "{sequence:?}"
        );
    }
    // Also on the blocklist, which is checked first.
    assert_eq!(check(&policy, "1234567890123"), Err(PolicyViolation::Common));
    let lax = PasswordPolicy::default().with_common_password_check(false);
    assert_eq!(check(&lax, "1234567890123"), Err(PolicyViolation::Sequential));
    assert_eq!(check(&lax, "1234abcd"), Err(PolicyViolation::Sequential));
    assert_eq!(check(&lax, "aaaaaaaa"), Err(PolicyViolation::Repetitive));
}

#[test]
fn passphrases_with_a_short_pattern_inside_are_accepted() {
    let policy = PasswordPolicy::default().with_min_length(NIST_SINGLE_FACTOR_MIN_LENGTH);
    for good in [
        "correct horse battery staple",
        "Tr0ub4dor&3xyzzy",
        "abc stands for alphabet",
        "my 123 favourite bees",
        "aaa batteries x4 please",
        "  spaced out passphrase  ",
        "mississippi riverboat",
        "abcabcab-but-then-more",
        "the defghi band plays",
    ] {
        assert_eq!(check(&policy, good), Ok(()), "{good:?}");
    }
}

#[test]
fn passwords_built_from_the_email_are_refused() {
    let policy = PasswordPolicy::default();
    let email = Email::parse("Alice.Smith+news@Mail.Example.com").unwrap();
    let check_for = |p: &str| policy.check(&Password::new(p), Some(&email));
    for built in [
        "alicealice!!",
        "ALICE.SMITH+NEWS!",
        "smith-alice-2024",
        "alice!!!!!!!!",
        "Alice12345678",
        "examplepassword",
        "news@mail.example",
        "alice.smith+news@mail.example.com!",
    ] {
        assert_eq!(check_for(built), Err(PolicyViolation::ContextWords), "{built:?}");
    }
    for own in [
        "alice in wonderland",
        "correct horse battery staple",
        "smithereens and more",
    ] {
        assert_eq!(check_for(own), Ok(()), "{own:?}");
    }
    // Too short before any word is removed: that is the answer.
    assert_eq!(
        policy.check(&Password::new("alice!!"), Some(&email)),
        Err(PolicyViolation::TooShort { min: 8 })
    );
    let lenient = PasswordPolicy::default().with_min_length(6);
    assert_eq!(
        lenient.check(&Password::new("alice!!"), Some(&email)),
        Err(PolicyViolation::ContextWords)
    );
    // Only words of 3 characters or more count; the top-level domain never does.
    let short = Email::parse("al@de.com").unwrap();
    assert_eq!(policy.check(&Password::new("al-de-com-xyz"), Some(&short)), Ok(()));
    // Typed in Unicode, stored in IDNA form: the label still counts.
    let idn = Email::parse("kai@bücher.de").unwrap();
    assert_eq!(
        policy.check(&Password::new("BÜCHERbücher1"), Some(&idn)),
        Err(PolicyViolation::ContextWords)
    );
}

#[test]
fn service_context_words_are_refused_and_none_by_default() {
    assert!(PasswordPolicy::default().context_words().is_empty());
    let policy = PasswordPolicy::default().with_context_words(["Example", "ex", "ACME"]);
    assert_eq!(policy.context_words(), ["acme", "example"]);
    for built in ["example2024!", "EXAMPLEexample!", "acme-example-1", "examplepassword"] {
        assert_eq!(check(&policy, built), Err(PolicyViolation::ContextWords), "{built:?}");
    }
    assert_eq!(check(&policy, "example of a fine passphrase"), Ok(()));
    // Replaced, not added to.
    let other = policy.with_context_words(["globex"]);
    assert_eq!(check(&other, "example2024!"), Ok(()));
    assert_eq!(check(&other, "globex2024!"), Err(PolicyViolation::ContextWords));
}

/// Every password the workspace's tests, examples, benchmarks and the contract's
/// reference transcript set or log in with, found by searching the sources for
/// string literals; accepted for the accounts they are used with and for the example
/// server's context words (the host labels of `https://auth.example.test`).
#[test]
fn every_password_the_workspace_uses_still_passes() {
    let policy = PasswordPolicy::default().with_context_words(["auth", "example"]);
    let emails = [
        "ada@example.com",
        "alice@example.com",
        "ana@example.com",
        "bob@example.com",
        "carl@example.com",
        "other@example.com",
        "user@example.com",
        "wes@example.com",
    ]
    .map(|address| Email::parse(address).unwrap());
    for password in [
        "correct horse battery staple",
        "a brand new passphrase",
        "another new passphrase",
        "yet another passphrase",
        "testpass123",
        "plaid-otter-sunrise",
        "new passphrase!",
        "another passphrase",
        "another-passphrase",
        "newest passphrase",
        "newer passphrase",
        "analytical-engine",
        "analytical-engine-1843",
        "cobol-compiler-1959",
        "fish-and-chips",
        "\u{FB01}sh-and-chips",
        "café-au-lait",
        "cafe\u{0301}-au-lait",
        "another good password",
        "correct horse battery stapler",
        "whatever it is",
        "hunter2-secret",
        "same password",
        "a guessed password",
        "not the password",
    ] {
        assert_eq!(check(&policy, password), Ok(()), "{password:?}");
        for email in &emails {
            assert_eq!(
                policy.check(&Password::new(password), Some(email)),
                Ok(()),
                "{password:?} for {email}"
            );
        }
    }
}

fn is_repetition_of_a_shorter_unit(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (1..chars.len())
        .any(|unit| chars.len().is_multiple_of(unit) && chars.chunks(unit).all(|chunk| chunk == &chars[..unit]))
}

proptest! {
    #[test]
    fn a_password_and_its_nfkc_form_get_the_same_verdict(password in "\\PC{0,30}") {
        let policy = PasswordPolicy::default();
        let normalized: String = password.nfkc().collect();
        prop_assert_eq!(check(&policy, &password), check(&policy, &normalized));
    }

    #[test]
    fn an_accepted_password_is_never_a_repetition_of_a_shorter_unit(
        password in prop_oneof![
            "\\PC{0,40}",
            ("\\PC{1,10}", 2..6_usize).prop_map(|(unit, copies)| unit.repeat(copies)),
        ],
    ) {
        let policy = PasswordPolicy::default().with_min_length(1).with_common_password_check(false);
        if check(&policy, &password).is_ok() {
            // Judged as hashed: the NFKC form, in lowercase.
            let normalized: String = password.nfkc().flat_map(char::to_lowercase).collect();
            prop_assert!(!is_repetition_of_a_shorter_unit(&normalized), "{:?}", password);
        }
    }

    #[test]
    fn a_repeated_printable_unit_is_always_refused(unit in "[ -~]{1,12}", copies in 2..8_usize) {
        let policy = PasswordPolicy::default().with_min_length(1).with_common_password_check(false);
        prop_assert_eq!(check(&policy, &unit.repeat(copies)), Err(PolicyViolation::Repetitive));
    }
}
