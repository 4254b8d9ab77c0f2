//! Every address `auth_core::Email::parse` accepts can be mailed: lettre, the transport of
//! the example servers, accepts its normalized form as an `Address` and writes a message
//! to it. Checked over a corpus of tricky inputs and over generated strings mixing ASCII
//! specials, dots, letters of several scripts, emoji, combining marks, `@` and domains.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::str::FromStr;

use auth_core::{Email, EmailError};
use lettre::Address;
use lettre::message::{Mailbox, Message};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Whether `Email::parse` accepts `input`; if it does, asserts that lettre can address a
/// message to its normalized form, exactly as the example server's mailer builds it.
fn accepted_and_mailable(input: &str) -> bool {
    let Ok(email) = Email::parse(input) else {
        return false;
    };
    let address = Address::from_str(email.as_str()).unwrap_or_else(|error| {
        panic!(
            "{input:?} normalizes to {:?}, which lettre refuses: {error}",
            email.as_str()
        )
    });
    assert_eq!(address.as_ref() as &str, email.as_str());
    assert_eq!((address.user(), address.domain()), (email.local_part(), email.domain()));
    // The same check through the other constructor, which validates the parts separately.
    Address::new(email.local_part(), email.domain())
        .unwrap_or_else(|error| panic!("{input:?}: lettre refuses the parts of {:?}: {error}", email.as_str()));
    let message = Message::builder()
        .from("auth <no-reply@example.test>".parse().unwrap())
        .to(Mailbox::new(None, address))
        .subject("test")
        .body(String::from("body"));
    assert!(
        message.is_ok(),
        "{input:?}: lettre cannot build a message to it: {message:?}"
    );
    true
}

/// Inputs near every edge of the rules, accepted or not.
const CORPUS: &[&str] = &[
    // Accepted forms the rest of the project uses.
    "alice@example.com",
    "  Alice@Example.COM ",
    "first.last+tag@gmail.com",
    "Alice.Smith+News@Bücher.DE",
    "josé@example.com",
    "jose\u{301}@example.com",
    "Jürgen.Groß@Bücher.de",
    "ΟΔΟΣ@example.com",
    "οδος@example.com",
    "\u{212A}ate@example.com",
    "ＫＡＴＥ@example.com",
    "\u{FB01}sh@example.com",
    "a@ｅｘａｍｐｌｅ.com",
    "kurt@XN--BCHER-KVA.de",
    "100%_real'o@example.com",
    "!#$%&'*+-/=?^_`{|}~@example.com",
    "x'or'1'='1@example.com",
    "用户@例子.广告",
    "山田たろう@example.jp",
    "tarō山田@example.jp",
    "김철수@example.kr",
    "раураӏ@example.com",
    "иван@почта.рф",
    "राम@example.in",
    "שלום@example.co.il",
    "user@mail.例え.jp",
    "a@b.co",
    // Refused: dots, characters mail cannot carry, marks, scripts.
    ".lead@example.com",
    "a..b@example.com",
    "a.@example.com",
    ".@example.com",
    "a\u{FF0E}@example.com",
    "😀@example.com",
    "a📧b@example.com",
    "❤\u{FE0F}@example.com",
    "1\u{FE0F}\u{20E3}@example.com",
    "\u{301}@example.com",
    "\u{301}\u{308}@example.com",
    "a.\u{301}b@example.com",
    "\u{64E}\u{64F}@example.com",
    "q\u{301}@example.com",
    "हिन्दी@example.in",
    "a\u{2014}b@example.com",
    "a\u{A0}b@example.com",
    "a\u{200B}b@example.com",
    "a\u{3002}b@example.com",
    "pаypаl@example.com",
    "alice@pаypal.com",
    "alice@xn--pypal-4ve.com",
    "gοοgle@example.com",
    "た김@example.com",
    // Refused: structure and domains.
    "\"quoted\"@example.com",
    "\"a b\"@example.com",
    "a@b@example.com",
    "a(comment)@example.com",
    "a\\b@example.com",
    "a b@example.com",
    "Name <a@example.com>",
    "a@localhost",
    "a@[127.0.0.1]",
    "a@127.0.0.1",
    "a@-example.com",
    "a@example-.com",
    "a@exa_mple.com",
    "a@example..com",
    "a@example.com.",
    "@example.com",
    "a@",
    "",
];

#[test]
fn every_accepted_corpus_address_is_one_lettre_can_send_to() {
    let accepted: Vec<&str> = CORPUS
        .iter()
        .copied()
        .filter(|input| accepted_and_mailable(input))
        .collect();
    // The corpus means something only if both sides are well represented.
    assert!(accepted.len() >= 25, "{accepted:?}");
    assert!(CORPUS.len() - accepted.len() >= 40, "{accepted:?}");
}

#[test]
fn the_forms_that_registered_but_could_never_be_mailed_are_refused() {
    for (input, error) in [
        (".lead@example.com", EmailError::MisplacedDot),
        ("a..b@example.com", EmailError::MisplacedDot),
        ("a.@example.com", EmailError::MisplacedDot),
        ("😀@example.com", EmailError::UnmailableCharacter('😀')),
        (
            "\u{301}\u{308}@example.com",
            EmailError::LeadingCombiningMark('\u{301}'),
        ),
    ] {
        assert_eq!(Email::parse(input), Err(error), "{input:?}");
    }
    // Each of them is a form lettre itself refuses: they could never have been sent.
    for address in [
        ".lead@example.com",
        "a..b@example.com",
        "a.@example.com",
        "😀@example.com",
        "\u{301}\u{308}@example.com",
    ] {
        assert!(Address::from_str(address).is_err(), "{address:?}");
    }
}

/// One piece of a generated local part: mostly characters near the edges of the rules.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9]{1,4}",
        2 => prop::sample::select(vec!['!', '#', '$', '%', '&', '\'', '*', '+', '-', '/', '=', '?', '^', '_', '`', '{', '|', '}', '~']).prop_map(String::from),
        2 => Just(".".to_owned()),
        1 => prop::sample::select(vec!['"', '(', ')', ',', ':', ';', '<', '>', '[', '\\', ']', ' ', '@']).prop_map(String::from),
        3 => prop::sample::select(vec![
            'é', 'ß', 'ü', 'Ж', 'ж', 'а', 'р', 'α', 'Σ', 'ς', '山', 'た', 'カ', '김', 'ע', 'ا', 'र', 'ा', 'ก', '\u{212A}', 'Ｋ', 'ａ', '\u{FB01}', '١', '½', 'ⅷ',
        ]).prop_map(String::from),
        1 => prop::sample::select(vec!['😀', '📧', '❤', '\u{FE0F}', '\u{20E3}', '™', '€', '—', '。', '．', '＠', '\u{A8}']).prop_map(String::from),
        1 => prop::sample::select(vec!['\u{301}', '\u{308}', '\u{64E}', '\u{94D}', '\u{93E}', '\u{E48}', '\u{345}', '\u{20DD}']).prop_map(String::from),
    ]
}

fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "example.com", "Bücher.DE", "xn--bcher-kva.de", "ＥＸＡＭＰＬＥ.org", "mail.例え.jp", "почта.рф",
            "pаypal.com", "xn--pypal-4ve.com", "localhost", "127.0.0.1", "[127.0.0.1]", "a-.com", "exa_mple.com",
            "example.com.", "münchen.de", "ドメイン.テスト",
        ]).prop_map(String::from),
        2 => "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\\.[a-z]{2,5}",
    ]
}

fn address_like() -> impl Strategy<Value = String> {
    (prop::collection::vec(piece(), 1..10), domain())
        .prop_map(|(pieces, domain)| format!("{}@{domain}", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn every_accepted_generated_address_is_one_lettre_can_send_to(input in address_like()) {
        accepted_and_mailable(&input);
    }

    #[test]
    fn every_accepted_arbitrary_local_part_is_one_lettre_can_send_to(
        local in "\\PC{1,20}",
        domain in domain(),
    ) {
        accepted_and_mailable(&format!("{local}@{domain}"));
    }
}

/// The generator is worth something only if it produces both accepted and refused
/// addresses in quantity.
#[test]
fn the_generator_reaches_both_sides_of_the_rules() {
    let mut runner = TestRunner::deterministic();
    let strategy = address_like();
    let total = 2000;
    let accepted = (0..total)
        .filter(|_| accepted_and_mailable(&strategy.new_tree(&mut runner).unwrap().current()))
        .count();
    assert!(accepted * 10 >= total, "only {accepted} of {total} accepted");
    assert!(
        accepted * 10 <= total * 9,
        "{accepted} of {total} accepted: the refusals are not exercised"
    );
}
