//! Accounts, sign-in, lock-out and sessions as a person meets them, on both engines: SQLite in
//! a temporary folder and the PostgreSQL server of this machine (a schema of its own per test;
//! skipped, or failed under `ORTAQ_REQUIRE_PG=1`, when the server is unreachable).

use std::sync::atomic::Ordering;

use db::Engine;
use people::{People, PeopleError, Policy, Role, SignIn};

const RIGHT: &str = "correct horse battery";

/// What a sign-in attempt looks like to the person: welcome, refused, or locked.
async fn check(p: &People, login: &str, password: &str, expect: &str) -> Option<people::Session> {
    let got = p.sign_in(login, password).await.unwrap();
    let (seen, session) = match got {
        SignIn::Welcome(s) => ("welcome", Some(s)),
        SignIn::Refused => ("refused", None),
        SignIn::Locked { .. } => ("locked", None),
    };
    assert_eq!(seen, expect, "signing in as {login:?}");
    session
}

async fn a_person_signs_in_and_is_locked_out_after_five_wrong_passwords(engine: Engine) {
    let (clock, offset) = testkit::movable_clock();
    let p = People::open(engine.clone(), clock.clone(), Policy::default()).unwrap();
    p.add(
        "aigerim",
        "Айгерим Нурланова",
        &[Role::Officer, Role::Operator],
        RIGHT,
    )
    .await
    .unwrap();
    assert!(matches!(
        p.add("aigerim", "Another", &[Role::Business], RIGHT).await,
        Err(PeopleError::Exists(_))
    ));
    assert!(matches!(
        p.add("bolat", "Болат", &[Role::Business], "short").await,
        Err(PeopleError::Invalid(_))
    ));
    assert!(matches!(
        p.add("Bolat Smith", "Болат", &[Role::Business], RIGHT)
            .await,
        Err(PeopleError::Invalid(_))
    ));

    let s = check(&p, "aigerim", RIGHT, "welcome").await.unwrap();
    assert_eq!(s.account.name, "Айгерим Нурланова");
    assert_eq!(s.account.roles, vec![Role::Operator, Role::Officer]);
    let again = p.session(&s.token).await.unwrap().unwrap();
    assert!(again.csrf_matches(&s.csrf) && !again.csrf_matches("x"));
    assert!(p.session("not a session").await.unwrap().is_none());

    // Nobody and a wrong password are refused alike.
    check(&p, "nobody", RIGHT, "refused").await;
    // Four wrong, then the right one: welcome, and the count starts again.
    for _ in 0..4 {
        check(&p, "aigerim", "wrong password", "refused").await;
    }
    check(&p, "aigerim", RIGHT, "welcome").await;
    for _ in 0..4 {
        check(&p, "aigerim", "wrong password", "refused").await;
    }
    // The fifth wrong one in a row locks the account: even the right password waits.
    check(&p, "aigerim", "wrong password", "locked").await;
    check(&p, "aigerim", RIGHT, "locked").await;
    // A session opened before the lock-out goes on (the lock guards passwords, not people).
    assert!(p.session(&s.token).await.unwrap().is_some());
    offset.fetch_add(15 * 60 + 1, Ordering::Relaxed);
    let later = check(&p, "aigerim", RIGHT, "welcome").await.unwrap();

    // A session that sits idle for an hour ends; one in use ends after eight hours.
    offset.fetch_add(59 * 60, Ordering::Relaxed);
    assert!(p.session(&later.token).await.unwrap().is_some());
    assert!(
        p.session(&s.token).await.unwrap().is_none(),
        "idle too long"
    );
    for _ in 0..7 {
        offset.fetch_add(55 * 60, Ordering::Relaxed);
        assert!(p.session(&later.token).await.unwrap().is_some());
    }
    offset.fetch_add(55 * 60, Ordering::Relaxed);
    assert!(
        p.session(&later.token).await.unwrap().is_none(),
        "eight hours"
    );

    // Signing out ends a session; a new password ends them all.
    let a = check(&p, "aigerim", RIGHT, "welcome").await.unwrap();
    let b = check(&p, "aigerim", RIGHT, "welcome").await.unwrap();
    p.sign_out(&a.token).await.unwrap();
    assert!(p.session(&a.token).await.unwrap().is_none());
    assert!(p.session(&b.token).await.unwrap().is_some());
    p.set_password("aigerim", "another long password")
        .await
        .unwrap();
    assert!(p.session(&b.token).await.unwrap().is_none());
    check(&p, "aigerim", RIGHT, "refused").await;
    assert!(matches!(
        p.set_password("nobody", "another long password").await,
        Err(PeopleError::Unknown(_))
    ));
    p.close().await.unwrap();

    // What was stored survives a reopening.
    let p = People::open(engine, clock, Policy::default()).unwrap();
    let kept = check(&p, "aigerim", "another long password", "welcome")
        .await
        .unwrap();
    let logins: Vec<_> = p
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.login)
        .collect();
    assert_eq!(logins, ["aigerim"]);
    assert!(p.session(&kept.token).await.unwrap().is_some());
    p.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_person_signs_in_and_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("apps/people.db");
    a_person_signs_in_and_is_locked_out_after_five_wrong_passwords(Engine::Sqlite(file.clone()))
        .await;
    // Neither a password nor a session's cookie is in the file: a copy of it opens nothing.
    let (clock, _) = testkit::movable_clock();
    let p = People::open(Engine::Sqlite(file.clone()), clock, Policy::default()).unwrap();
    let s = check(&p, "aigerim", "another long password", "welcome")
        .await
        .unwrap();
    p.close().await.unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!has(&s.token) && !has("another long password"));
    assert!(has("$argon2id$"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_person_signs_in_and_is_locked_out() {
    let Some(conn) = testkit::postgres_schema() else {
        return;
    };
    a_person_signs_in_and_is_locked_out_after_five_wrong_passwords(Engine::Postgres(conn)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_have_the_same_tables() {
    let Some(conn) = testkit::postgres_schema() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (clock, _) = testkit::movable_clock();
    let lite = People::open(
        Engine::Sqlite(dir.path().join("p.db")),
        clock.clone(),
        Policy::default(),
    )
    .unwrap();
    let pg = People::open(Engine::Postgres(conn), clock, Policy::default()).unwrap();
    assert_eq!(lite.schema().await.unwrap(), pg.schema().await.unwrap());
    lite.close().await.unwrap();
    pg.close().await.unwrap();
}
