//! Tests of the argon2id hasher: hashing, verification, rehash decisions and limits.

use super::*;

fn cheap() -> Argon2Hasher {
    Argon2Hasher::new(Argon2Params::new(64, 1, 1).unwrap())
}

fn verify(hasher: &Argon2Hasher, password: &str, hash: &str) -> Result<Verification, HashError> {
    hasher.verify(&Password::new(password), &HashedPassword::new(hash))
}

#[test]
fn default_is_argon2id_with_owasp_parameters() {
    let hasher = Argon2Hasher::default();
    let hash = hasher.hash(&Password::new("plaid-otter-sunrise")).unwrap();
    assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash:?}");
    let phc = PasswordHash::new(hash.as_str()).unwrap();
    assert_eq!(phc.salt.unwrap().len(), 16);
    assert_eq!(phc.hash.unwrap().len(), 32);
}

#[test]
fn hashes_agree_with_the_argon2_crates_own_phc_functions() {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};
    let ours = cheap();
    let theirs = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(64, 1, 1, None).unwrap(),
    );
    let password = "plaid-otter-sunrise";
    let made_by_us = ours.hash(&Password::new(password)).unwrap();
    assert!(theirs.verify_password(password.as_bytes(), made_by_us.as_str()).is_ok());
    assert!(theirs.verify_password(b"other", made_by_us.as_str()).is_err());
    let made_by_them = theirs.hash_password(password.as_bytes()).unwrap().to_string();
    assert_eq!(
        verify(&ours, password, &made_by_them),
        Ok(Verification::Match { needs_rehash: false })
    );
    assert_eq!(verify(&ours, "other", &made_by_them), Ok(Verification::Mismatch));
    // And a hash of another variant, version and output length, as a stored one may be.
    let argon2i = Argon2::new(
        Algorithm::Argon2i,
        Version::V0x10,
        Params::new(64, 1, 1, Some(40)).unwrap(),
    );
    let legacy = argon2i.hash_password(password.as_bytes()).unwrap().to_string();
    assert_eq!(
        verify(&ours, password, &legacy),
        Ok(Verification::Match { needs_rehash: true })
    );
    assert_eq!(verify(&ours, "other", &legacy), Ok(Verification::Mismatch));
}

#[test]
fn working_memory_is_reused_not_allocated_per_hash() {
    let hasher = cheap();
    let password = Password::new("plaid-otter-sunrise");
    assert_eq!(hasher.memory.kept(), (0, 0));
    let hash = hasher.hash(&password).unwrap();
    for _ in 0..5 {
        assert!(hasher.verify(&password, &hash).unwrap().is_match());
        hasher.hash(&password).unwrap();
    }
    assert_eq!(hasher.memory.kept(), (1, 64), "one buffer of m KiB, reused");

    // A stored hash that asks for more memory grows the buffer once.
    let bigger = Argon2Hasher::new(Argon2Params::new(256, 1, 1).unwrap())
        .hash(&password)
        .unwrap();
    assert!(hasher.verify(&password, &bigger).unwrap().is_match());
    assert!(hasher.verify(&password, &hash).unwrap().is_match());
    assert_eq!(hasher.memory.kept(), (1, 256));

    // Concurrent hashes each need their own, and keep no more than ran at once.
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (hasher, hash) = (hasher.clone(), hash.clone());
            std::thread::spawn(move || {
                for _ in 0..20 {
                    let verified = hasher.verify(&Password::new("plaid-otter-sunrise"), &hash);
                    assert!(verified.unwrap().is_match());
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|thread| thread.join().unwrap());
    let (buffers, _) = hasher.memory.kept();
    assert!((1..=3).contains(&buffers), "{buffers} buffers for 3 threads");
}

#[test]
fn round_trip_and_wrong_password() {
    let hasher = cheap();
    let hash = hasher.hash(&Password::new("plaid-otter-sunrise")).unwrap();
    assert_eq!(
        hasher.verify(&Password::new("plaid-otter-sunrise"), &hash),
        Ok(Verification::Match { needs_rehash: false })
    );
    assert_eq!(
        hasher.verify(&Password::new("plaid-otter-sunrisE"), &hash),
        Ok(Verification::Mismatch)
    );
    // Never trimmed.
    assert_eq!(
        hasher.verify(&Password::new("plaid-otter-sunrise "), &hash),
        Ok(Verification::Mismatch)
    );
}

#[test]
fn salts_differ_between_hashes() {
    let hasher = cheap();
    let a = hasher.hash(&Password::new("same password")).unwrap();
    let b = hasher.hash(&Password::new("same password")).unwrap();
    assert_ne!(a, b);
}

#[test]
fn hashes_the_nfkc_form() {
    let hasher = cheap();
    // Typed with the "fi" ligature, verified as plain letters, and the other way round.
    let hash = hasher.hash(&Password::new("\u{FB01}sh-and-chips")).unwrap();
    assert_eq!(
        hasher.verify(&Password::new("fish-and-chips"), &hash),
        Ok(Verification::Match { needs_rehash: false })
    );
    let decomposed = hasher.hash(&Password::new("cafe\u{0301}-au-lait")).unwrap();
    assert!(
        hasher
            .verify(&Password::new("café-au-lait"), &decomposed)
            .unwrap()
            .is_match()
    );
}

#[test]
fn weaker_parameters_ask_for_rehash_and_stronger_ones_do_not() {
    let current = Argon2Hasher::new(Argon2Params::new(64, 2, 1).unwrap());
    let password = Password::new("plaid-otter-sunrise");
    for (memory, iterations, lanes, needs_rehash) in [
        (32, 2, 1, true),   // less memory
        (64, 1, 1, true),   // fewer iterations
        (128, 1, 1, true),  // more memory does not make up for fewer iterations
        (64, 2, 2, false),  // other lanes, same cost
        (128, 3, 1, false), // stronger: keep it rather than weaken it
    ] {
        let other = Argon2Hasher::new(Argon2Params::new(memory, iterations, lanes).unwrap());
        let hash = other.hash(&password).unwrap();
        assert_eq!(
            current.verify(&password, &hash),
            Ok(Verification::Match { needs_rehash }),
            "m={memory} t={iterations} p={lanes}"
        );
        assert_eq!(
            current.verify(&Password::new("nope"), &hash),
            Ok(Verification::Mismatch)
        );
    }
}

#[test]
fn the_dummy_hash_has_current_parameters_and_matches_nothing() {
    let hasher = Argon2Hasher::default();
    let dummy = hasher.dummy_hash();
    assert!(
        dummy.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{dummy:?}"
    );
    let stored = hasher.prepare(dummy).unwrap();
    assert!(
        stored.is_up_to_date(),
        "verifying the dummy must cost what a real hash costs"
    );
    assert_eq!(dummy.as_str().split('$').nth(3), Some("m=19456,t=2,p=1"));
    let cheap = cheap();
    assert_eq!(
        cheap.verify(&Password::new(""), cheap.dummy_hash()),
        Ok(Verification::Mismatch)
    );
    assert_ne!(Argon2Hasher::default().dummy_hash(), hasher.dummy_hash());
}

#[test]
fn hostile_argon2_hashes_are_refused_without_computing() {
    let hasher = cheap();
    // Each of these would take many gigabytes or hours if computed; the test would
    // run out of memory or time rather than pass.
    for hostile in [
        "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2id$v=19$m=19456,t=4294967295,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2id$v=19$m=2097152,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        "$argon2id$v=19$m=65536,t=1,p=255$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        // Each limit alone is met; together they are 64 MiB × 10 passes.
        "$argon2id$v=19$m=65536,t=10,p=8$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
    ] {
        assert!(
            matches!(verify(&hasher, "pw", hostile), Err(HashError::LimitExceeded { .. })),
            "{hostile}"
        );
    }
}

#[test]
fn malformed_argon2_hashes_are_errors_not_panics() {
    let hasher = cheap();
    let valid = hasher.hash(&Password::new("pw")).unwrap();
    let valid = valid.as_str();
    let mut cases: Vec<String> = (0..valid.len()).map(|n| valid[..n].to_owned()).collect();
    cases.extend([
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ".to_owned(), // no output
        "$argon2id$v=19$m=64,t=1,p=1".to_owned(),             // no salt
        "$argon2x$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(), // unknown variant
        "$argon2id$v=99$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(), // unknown version
        "$argon2id$v=19$m=-1,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(), // negative
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA\u{00e9}".to_owned(), // non-ASCII
        "$argon2id$v=19$m=64,t=1,p=1$c2Fsd\u{1F980}HNhbHQ$aGFzaA".to_owned(),
        format!("{valid}{}", "A".repeat(10_000)), // oversized
    ]);
    for case in cases {
        let result = verify(&hasher, "pw", &case);
        assert!(
            result.is_err() || result == Ok(Verification::Mismatch),
            "{case:?} -> {result:?}"
        );
    }
}

#[test]
fn unknown_formats_are_refused() {
    let hasher = cheap();
    for unknown in [
        "",
        "plaintext-password",
        "5f4dcc3b5aa765d61d8327deb882cf99",
        "$1$salt$hash",
        "$6$salt$hash",
        "{SSHA}abc",
    ] {
        assert_eq!(
            verify(&hasher, "pw", unknown),
            Err(HashError::UnknownFormat),
            "{unknown:?}"
        );
    }
}

#[test]
fn current_parameters_are_always_within_limits() {
    let params = Argon2Params::new(64, 20, 1).unwrap();
    let hasher = Argon2Hasher::new(params).with_limits(HashLimits::default().with_max_argon2_iterations(2));
    let hash = hasher.hash(&Password::new("pw")).unwrap();
    assert!(hasher.verify(&Password::new("pw"), &hash).unwrap().is_match());
}
