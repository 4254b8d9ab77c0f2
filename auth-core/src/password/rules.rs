//! The structural rules of the password policy: repetition, sequences and context words.
//! Each works on the case-folded NFKC form, so `AbcAbc` and `abcabc` get one verdict.

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::email::Email;

/// Context words shorter than this are ignored: removing `al` or `de` from every
/// password would refuse good ones for nothing an attacker could guess from them.
pub(super) const MIN_CONTEXT_WORD_CHARS: usize = 3;

/// The shortest run of consecutive characters that counts as a sequence: `ab` occurs in
/// plenty of words, and a password cut into two-character pieces is no sequence anyone
/// types.
const MIN_RUN: usize = 3;

/// Lowercases `normalized` (already NFKC) one character at a time. Not
/// `str::to_lowercase`: its final-sigma rule depends on the neighbours, so it could turn a
/// repetition (`ΑΣΑΣ`) into text that no longer is one (`ασας`). Final sigma folds to
/// σ, as in email local parts, so a context word matches however its sigma was typed.
pub(super) fn fold(normalized: &str) -> Zeroizing<Vec<char>> {
    Zeroizing::new(
        normalized
            .chars()
            .flat_map(char::to_lowercase)
            .map(|c| if c == 'ς' { 'σ' } else { c })
            .collect(),
    )
}

/// A context word as it is compared: NFKC, folded like passwords; `None` when too short.
pub(super) fn fold_word(word: &str) -> Option<String> {
    let normalized: String = word.nfkc().collect();
    let folded: String = fold(&normalized).iter().collect();
    (folded.chars().count() >= MIN_CONTEXT_WORD_CHARS).then_some(folded)
}

/// Whether `chars` is two or more copies of a shorter unit, the last copy possibly cut
/// short: it has a period of at most half its length (`aaaa`, `abcabcab`).
pub(super) fn is_repetitive(chars: &[char]) -> bool {
    (1..=chars.len() / 2).any(|period| {
        chars[period..]
            .iter()
            .zip(chars)
            .all(|(later, earlier)| later == earlier)
    })
}

/// Whether `chars` is made entirely of runs of at least [`MIN_RUN`] characters, each
/// stepping by +1 or by −1 in code point, digits also wrapping around (`…890…`, `…098…`).
/// The runs may change direction or restart anywhere: `1234abcd`, `abccba`.
pub(super) fn is_sequential(chars: &[char]) -> bool {
    // `ends[i]`: the first `i` characters are made of runs. Any run of three or more
    // characters splits into runs of three to five, so those lengths find every split.
    let mut ends = vec![false; chars.len() + 1];
    ends[0] = true;
    for end in MIN_RUN..=chars.len() {
        ends[end] = (MIN_RUN..=2 * MIN_RUN - 1)
            .filter(|&len| len <= end)
            .any(|len| ends[end - len] && is_run(&chars[end - len..end]));
    }
    !chars.is_empty() && ends[chars.len()]
}

fn is_run(chars: &[char]) -> bool {
    [1, -1]
        .into_iter()
        .any(|direction| chars.windows(2).all(|pair| steps_by(pair[0], pair[1], direction)))
}

fn steps_by(from: char, to: char, direction: i64) -> bool {
    // The digit row of a keyboard ends `…890`, so a run of digits continues past 9 and 0.
    if from.is_ascii_digit() && to.is_ascii_digit() {
        let (from, to) = (i64::from(u32::from(from)), i64::from(u32::from(to)));
        return (to - from - direction).rem_euclid(10) == 0;
    }
    i64::from(u32::from(to)) - i64::from(u32::from(from)) == direction
}

/// The context words of an account's email, folded: the local part, its pieces split on
/// `.` `_` `-` `+`, and the domain's labels in Unicode form except the top-level one
/// (`alice.smith+news@mail.bücher.de`: `alice.smith+news`, `alice`, `smith`, `news`,
/// `mail`, `bücher`).
pub(super) fn email_words(email: &Email) -> Vec<String> {
    let local = email.local_part();
    // Users type `bücher`, not the `xn--bcher-kva` the address is stored with. A label
    // that fails to decode stays in its ASCII form, which is still worth refusing.
    let (domain, _) = idna::domain_to_unicode(email.domain());
    let labels: Vec<&str> = domain.split('.').collect();
    let below_top_level = &labels[..labels.len().saturating_sub(1)];
    std::iter::once(local)
        .chain(local.split(['.', '_', '-', '+']))
        .chain(below_top_level.iter().copied())
        .filter_map(fold_word)
        .collect()
}

/// `folded` without every occurrence of every word in `words`, longest words first (so
/// the whole local part goes before its pieces), until none is left: removing one can
/// join two halves of another (`alicalicee`). `None` when no word occurred at all.
pub(super) fn without_words(folded: &[char], words: &[String]) -> Option<Zeroizing<String>> {
    let mut words: Vec<&str> = words.iter().map(String::as_str).collect();
    words.sort_by_key(|word| std::cmp::Reverse(word.chars().count()));
    let original: Zeroizing<String> = Zeroizing::new(folded.iter().collect());
    let mut rest = original.clone();
    loop {
        let before = rest.len();
        for word in &words {
            while rest.contains(word) {
                rest = Zeroizing::new(rest.replace(word, ""));
            }
        }
        if rest.len() == before {
            break;
        }
    }
    (rest.len() < original.len()).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(text: &str) -> Vec<char> {
        text.chars().collect()
    }

    #[test]
    fn repetition_needs_two_copies_of_a_shorter_unit() {
        for repeated in [
            "aa",
            "aaaaaaaaaaaaaaaa",
            "passwordpassword",
            "abcabcabc",
            "abcabcab",
            "                ",
        ] {
            assert!(is_repetitive(&chars(repeated)), "{repeated:?}");
        }
        for other in [
            "",
            "a",
            "ab",
            "aab",
            "abcab",
            "passwordpasswor",
            "correct horse battery staple",
        ] {
            assert!(!is_repetitive(&chars(other)), "{other:?}");
        }
    }

    #[test]
    fn sequences_are_runs_of_three_or_more_in_either_direction() {
        for sequence in [
            "abc",
            "abcdefghijklmnop",
            "123456789012345",
            "zyxwvuts",
            "9876543210987",
            "1234567890123",
            "1234abcd",
            "abccba",
            "xyzabc",
            "cdefedcba",
        ] {
            assert!(is_sequential(&chars(sequence)), "{sequence:?}");
        }
        for other in [
            "",
            "ab",
            "abcd1",
            "12ab34cd",
            "abcabd",
            "aaa",
            "acegik",
            "Tr0ub4dor&3xyzzy",
        ] {
            assert!(!is_sequential(&chars(other)), "{other:?}");
        }
    }

    #[test]
    fn email_words_cover_the_local_part_its_pieces_and_the_domain_labels() {
        let email = Email::parse("Alice.Smith+news@Mail.Bücher.de").unwrap();
        assert_eq!(
            email_words(&email),
            ["alice.smith+news", "alice", "smith", "news", "mail", "bücher"]
        );
        // `al` and `de` are too short to matter; the TLD is never a word.
        let short = Email::parse("al_x@de.com").unwrap();
        assert_eq!(email_words(&short), ["al_x"]);
    }

    #[test]
    fn removal_repeats_until_no_word_is_left() {
        let words = ["alice".to_owned(), "example".to_owned()];
        assert_eq!(without_words(&chars("alicalicee!"), &words).unwrap().as_str(), "!");
        assert_eq!(without_words(&chars("examplealice99"), &words).unwrap().as_str(), "99");
        assert!(without_words(&chars("bob's password"), &words).is_none());
    }
}
