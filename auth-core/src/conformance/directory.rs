//! The UserDirectory cases.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{sample_user, unique_email};
use crate::email::Email;
use crate::id::UserId;
use crate::store::{UserDirectory, UserStore};
use crate::user::User;

conformance_cases! { $
    /// Runs the [`UserDirectory`](crate::UserDirectory) cases: the listing's order and pages,
    /// and rows older than today's address rules: one `#[tokio::test]` per case, each on a
    /// fresh store made by the expression given (it may `.await`). See the [conformance
    /// suite](crate::conformance).
    macro user_directory_conformance_tests for [UserStore + UserDirectory + Clone + 'static];

    /// Accounts are listed in id order, a page at a time after a given id.
    pub async fn list_users_pages_in_id_order(store: S) {
        // Ids from a random far-future millisecond: no other case's accounts fall between.
        let base = OffsetDateTime::from_unix_timestamp(200_000_000_000).unwrap()
            + time::Duration::milliseconds(i64::try_from(Uuid::new_v4().as_u128() % 1_000_000_000).unwrap());
        let mut ours = Vec::new();
        for i in 0..5 {
            let user = User {
                id: UserId::new_at(base + time::Duration::milliseconds(i)),
                ..sample_user(unique_email("listed"))
            };
            ours.push(user);
        }
        // Inserted out of order: the listing sorts.
        for user in ours.iter().rev() {
            store.insert_user(user).await.unwrap();
        }
        assert_eq!(
            store.list_users(Some(ours[0].id), 2).await.unwrap(),
            ours[1..3].to_vec()
        );
        let rest = store.list_users(Some(ours[2].id), 1000).await.unwrap();
        assert_eq!(rest[..2].to_vec(), ours[3..5].to_vec());
        let after_last = store.list_users(Some(ours[4].id), 1000).await.unwrap();
        assert!(after_last.iter().all(|user| !ours.contains(user)));
        assert!(store.list_users(Some(ours[0].id), 0).await.unwrap().is_empty());
        let first = store.list_users(None, 3).await.unwrap();
        assert!(!first.is_empty() && first.len() <= 3);
        assert!(first.windows(2).all(|pair| pair[0].id < pair[1].id), "ascending ids");
    }

    /// Accounts are found by a prefix of their stored email, in id order, a page at a time;
    /// `_` and `%` in the prefix are themselves, never wildcards.
    pub async fn search_users_by_an_email_prefix(store: S) {
        let tag = Uuid::new_v4().simple().to_string();
        let base = OffsetDateTime::from_unix_timestamp(220_000_000_000).unwrap()
            + time::Duration::milliseconds(i64::try_from(Uuid::new_v4().as_u128() % 1_000_000_000).unwrap());
        let locals = [format!("{tag}-a"), format!("{tag}-b"), format!("{tag}_c"), format!("x{tag}")];
        let mut ours = Vec::new();
        for (i, local) in locals.iter().enumerate() {
            let user = User {
                id: UserId::new_at(base + time::Duration::milliseconds(i64::try_from(i).unwrap())),
                ..sample_user(Email::parse(&format!("{local}@example.com")).unwrap())
            };
            store.insert_user(&user).await.unwrap();
            ours.push(user);
        }
        let found = store.search_users(&tag, None, 100).await.unwrap();
        assert_eq!(found, ours[..3].to_vec(), "the prefix, in id order; not x{tag}");
        let dash = store.search_users(&format!("{tag}-"), None, 100).await.unwrap();
        assert_eq!(dash, ours[..2].to_vec());
        // `_` is a character, not one of any.
        let underscore = store.search_users(&format!("{tag}_"), None, 100).await.unwrap();
        assert_eq!(underscore, ours[2..3].to_vec());
        assert!(store.search_users(&format!("{tag}%"), None, 100).await.unwrap().is_empty());
        // Paged after an id.
        assert_eq!(store.search_users(&tag, Some(ours[0].id), 1).await.unwrap(), ours[1..2].to_vec());
        assert_eq!(
            store.search_users(&format!("{tag}-a@example.com"), None, 100).await.unwrap(),
            ours[..1].to_vec(),
            "a whole address"
        );
    }

    /// Accounts created before a rule for new addresses was added (a misplaced dot, an emoji,
    /// mixed scripts) still load and are found: a stored row is read with
    /// [`Email::parse_existing`], so one such row cannot make a listing fail.
    pub async fn addresses_older_than_the_new_address_rules_still_load(store: S) {
        let tag = Uuid::new_v4().simple().to_string();
        // Ids from a random far-future millisecond, as in `list_users_pages_in_id_order`: the
        // listing below holds ours alone.
        let base = OffsetDateTime::from_unix_timestamp(210_000_000_000).unwrap()
            + time::Duration::milliseconds(i64::try_from(Uuid::new_v4().as_u128() % 1_000_000_000).unwrap());
        let mut ours = Vec::new();
        let locals = [
            format!(".lead{tag}"),
            format!("a..b{tag}"),
            format!("{tag}."),
            format!("\u{1F600}{tag}"),
            format!("p\u{430}ypal{tag}"),
        ];
        for (i, local) in locals.into_iter().enumerate() {
            let email = Email::parse_existing(&format!("{local}@example.com")).unwrap();
            assert!(
                Email::parse(email.as_str()).is_err(),
                "{email} is refused for new accounts"
            );
            let user = User {
                id: UserId::new_at(base + time::Duration::milliseconds(i64::try_from(i).unwrap())),
                ..sample_user(email)
            };
            store.insert_user(&user).await.unwrap();
            assert_eq!(store.find_user_by_id(user.id).await.unwrap().as_ref(), Some(&user));
            assert_eq!(
                store.find_user_by_email(&user.email).await.unwrap().as_ref(),
                Some(&user)
            );
            ours.push(user);
        }
        let listed = store.list_users(Some(ours[0].id), 4).await.unwrap();
        assert_eq!(listed, ours[1..].to_vec());
    }
}
