//! People who sign in to a node's pages: accounts with roles and Argon2id passwords, sessions
//! kept in the store, lock-out after repeated wrong passwords.
//!
//! People are not the node's ISs (those hold API tokens in the node's store); their accounts
//! live in a store of their own on the node's engine, like an application's. A session's cookie
//! value is never stored, only its SHA-256, so a copy of the database opens no session; each
//! session carries the token its forms must send back (CSRF).

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use db::{Db, DbConfig, DbError, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

static MIGRATIONS: db::Migrations = db::Migrations {
    table: "people_migrations",
    list: &[db::Migration {
        version: 1,
        name: "people",
        sqlite: include_str!("../migrations/sqlite/0001_people.sql"),
        postgres: include_str!("../migrations/postgres/0001_people.sql"),
    }],
};

/// The time as the caller sees it (tests move it).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// What a person may do on a node's pages. The public needs no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the node: its console, participants and tokens.
    Operator,
    /// The Commission's analyst: statistics and registries across the Union.
    Analyst,
    /// An authority's officer: the documents of their authority.
    Officer,
    /// A trader or manufacturer.
    Business,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Operator, Role::Analyst, Role::Officer, Role::Business];

    pub fn code(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Analyst => "analyst",
            Role::Officer => "officer",
            Role::Business => "business",
        }
    }

    pub fn from_code(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// A person's account as the pages see it (never the password).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub login: String,
    pub name: String,
    pub roles: Vec<Role>,
}

impl Account {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The cookie's value: shown to the person's browser once, stored only as a hash.
    pub token: String,
    /// What the session's forms carry; compare with [`Session::csrf_matches`].
    pub csrf: String,
    pub account: Account,
    pub expires_at: OffsetDateTime,
}

impl Session {
    /// Whether a form's token is this session's, in time that does not depend on where they
    /// differ.
    pub fn csrf_matches(&self, given: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
    }
}

/// How a sign-in ended.
#[derive(Debug, Clone)]
pub enum SignIn {
    Welcome(Session),
    /// No such login, or the wrong password: the person is not told which.
    Refused,
    /// Too many wrong passwords: no password is checked until then.
    Locked {
        until: OffsetDateTime,
    },
}

/// Limits of sign-in and sessions.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Wrong passwords in a row that lock an account.
    pub max_failures: i64,
    pub lock_for: Duration,
    /// A session ends this long after sign-in, however busy.
    pub session_for: Duration,
    /// A session ends after this long without a request.
    pub idle_for: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_failures: 5,
            lock_for: Duration::minutes(15),
            session_for: Duration::hours(8),
            idle_for: Duration::hours(1),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Invalid(String),
    #[error("the login {0:?} is taken")]
    Exists(String),
    #[error("no account has the login {0:?}")]
    Unknown(String),
}

/// Bounds on what a person types, so a sign-in costs one Argon2 run of bounded input.
const MAX_PASSWORD: usize = 1024;
const MIN_PASSWORD: usize = 10;
/// `seen_at` is written at most this often per session: reading a page is not a write.
const SEEN_EVERY: Duration = Duration::minutes(1);

pub struct People {
    db: Db,
    clock: Clock,
    policy: Policy,
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

fn from_micros(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn parse_roles(s: &str) -> Result<Vec<Role>, DbError> {
    s.split(',')
        .filter(|r| !r.is_empty())
        .map(|r| Role::from_code(r).ok_or_else(|| DbError::Corrupt(format!("unknown role {r:?}"))))
        .collect()
}

/// A login: 1 to 64 of `a-z 0-9 . _ - @`, so it reads the same in every language and URL.
pub fn check_login(login: &str) -> Result<(), PeopleError> {
    let ok = !login.is_empty()
        && login.len() <= 64
        && login
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(PeopleError::Invalid(format!(
            "a login is 1 to 64 of a-z, 0-9, '.', '_', '-', '@': {login:?} is not"
        )))
    }
}

fn check_password(password: &str) -> Result<(), PeopleError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(PeopleError::Invalid(format!(
            "a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's first choice).
fn hash(password: &str) -> Result<String, PeopleError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PeopleError::Invalid(format!("cannot hash the password: {e}")))
}

fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash no password matches, checked for logins nobody has, so a refusal takes as long
/// whether the login exists or not.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash(&random_token()).unwrap_or_default())
}

impl People {
    /// Opens (creating and migrating if needed) the accounts. Blocking.
    pub fn open(engine: Engine, clock: Clock, policy: Policy) -> Result<People, PeopleError> {
        let mut cfg = DbConfig::new(engine, &MIGRATIONS, "people");
        cfg.readers = 2;
        Ok(People {
            db: Db::open(cfg)?,
            clock,
            policy,
        })
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// A new account. The password is hashed off the async threads.
    pub async fn add(
        &self,
        login: &str,
        name: &str,
        roles: &[Role],
        password: &str,
    ) -> Result<(), PeopleError> {
        check_login(login)?;
        check_password(password)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(PeopleError::Invalid(
                "a name has 1 to 200 characters".into(),
            ));
        }
        let phc = blocking({
            let p = password.to_owned();
            move || hash(&p)
        })
        .await??;
        let roles = roles_text(roles);
        let (login, name, now) = (login.to_owned(), name.to_owned(), micros((self.clock)()));
        self.db
            .write(move |tx| {
                let taken = tx
                    .conn
                    .query_one(
                        "SELECT 1 FROM people_accounts WHERE login = $1",
                        &[(&login).into()],
                    )?
                    .is_some();
                if taken {
                    return Ok(Err(PeopleError::Exists(login.clone())));
                }
                tx.conn.execute(
                    "INSERT INTO people_accounts (login, name, roles, password, failures, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
                    &[(&login).into(), (&name).into(), (&roles).into(), (&phc).into(), now.into()],
                )?;
                Ok(Ok(()))
            })
            .await?
    }

    /// A new password; every session of the account ends, and a lock-out is lifted.
    pub async fn set_password(&self, login: &str, password: &str) -> Result<(), PeopleError> {
        check_password(password)?;
        let phc = blocking({
            let p = password.to_owned();
            move || hash(&p)
        })
        .await??;
        let login = login.to_owned();
        self.db
            .write(move |tx| {
                let n = tx.conn.execute(
                    "UPDATE people_accounts SET password = $2, failures = 0, locked_until = NULL WHERE login = $1",
                    &[(&login).into(), (&phc).into()],
                )?;
                if n == 0 {
                    return Ok(Err(PeopleError::Unknown(login.clone())));
                }
                tx.conn.execute(
                    "DELETE FROM people_sessions WHERE login = $1",
                    &[(&login).into()],
                )?;
                Ok(Ok(()))
            })
            .await?
    }

    /// Checks a password and, when it is right and the account is not locked, opens a session.
    /// A wrong one counts towards the lock-out, whoever sent it.
    pub async fn sign_in(&self, login: &str, password: &str) -> Result<SignIn, PeopleError> {
        if check_login(login).is_err() || password.len() > MAX_PASSWORD {
            return Ok(SignIn::Refused);
        }
        let now = (self.clock)();
        let found = {
            let login = login.to_owned();
            self.db
                .read(move |c| {
                    c.query_one(
                        "SELECT password, locked_until FROM people_accounts WHERE login = $1",
                        &[login.into()],
                    )?
                    .map(|r| Ok::<_, DbError>((r.text(0)?, r.opt_i64(1)?)))
                    .transpose()
                })
                .await?
        };
        if let Some((_, Some(until))) = &found
            && *until > micros(now)
        {
            return Ok(SignIn::Locked {
                until: from_micros(*until),
            });
        }
        let right = blocking({
            let phc = found
                .as_ref()
                .map_or_else(|| decoy().to_owned(), |(p, _)| p.clone());
            let p = password.to_owned();
            move || verify(&p, &phc)
        })
        .await?;
        if found.is_none() {
            return Ok(SignIn::Refused);
        }
        let (login, policy) = (login.to_owned(), self.policy);
        let (token, csrf) = (random_token(), random_token());
        let token_hash = sha256_hex(&token);
        let csrf_kept = csrf.clone();
        let outcome = self
            .db
            .write(move |tx| {
                let now_us = micros(now);
                let row = tx.conn.query_one(
                    "SELECT name, roles, failures, locked_until FROM people_accounts WHERE login = $1",
                    &[(&login).into()],
                )?;
                let Some(row) = row else {
                    return Ok(Outcome::Refused);
                };
                // Another request may have locked the account since the read above.
                if let Some(until) = row.opt_i64(3)?
                    && until > now_us
                {
                    return Ok(Outcome::Locked(until));
                }
                if !right {
                    let failures = row.i64(2)? + 1;
                    if failures >= policy.max_failures {
                        let until = micros(now + policy.lock_for);
                        tx.conn.execute(
                            "UPDATE people_accounts SET failures = 0, locked_until = $2 WHERE login = $1",
                            &[(&login).into(), until.into()],
                        )?;
                        return Ok(Outcome::Locked(until));
                    }
                    tx.conn.execute(
                        "UPDATE people_accounts SET failures = $2 WHERE login = $1",
                        &[(&login).into(), failures.into()],
                    )?;
                    return Ok(Outcome::Refused);
                }
                tx.conn.execute(
                    "UPDATE people_accounts SET failures = 0, locked_until = NULL WHERE login = $1",
                    &[(&login).into()],
                )?;
                // Sessions that ended are of no use to anyone: sweep them as people arrive.
                tx.conn.execute(
                    "DELETE FROM people_sessions WHERE expires_at <= $1 OR seen_at <= $2",
                    &[now_us.into(), micros(now - policy.idle_for).into()],
                )?;
                let expires = micros(now + policy.session_for);
                tx.conn.execute(
                    "INSERT INTO people_sessions (token_sha256, login, csrf, created_at, seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
                    &[(&token_hash).into(), (&login).into(), (&csrf_kept).into(), now_us.into(), expires.into()],
                )?;
                Ok(Outcome::Welcome(Account {
                    login: login.clone(),
                    name: row.text(0)?,
                    roles: parse_roles(&row.text(1)?)?,
                }, expires))
            })
            .await?;
        Ok(match outcome {
            Outcome::Refused => SignIn::Refused,
            Outcome::Locked(until) => SignIn::Locked {
                until: from_micros(until),
            },
            Outcome::Welcome(account, expires) => SignIn::Welcome(Session {
                token,
                csrf,
                account,
                expires_at: from_micros(expires),
            }),
        })
    }

    /// A session for a person whom another node of the federation signed in (cross-border
    /// sign-in): their account here is `<segment>:<login>` (a form no local login has), made or
    /// updated with the name and roles their node asserts, and has no password.
    pub async fn federated_session(
        &self,
        segment: &str,
        login: &str,
        name: &str,
        roles: &[Role],
    ) -> Result<Session, PeopleError> {
        check_login(login)?;
        if segment.is_empty()
            || segment.len() > 3
            || !segment.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(PeopleError::Invalid(format!(
                "{segment:?} is not a segment"
            )));
        }
        let name: String = name.trim().chars().take(200).collect();
        let login = format!("{}:{login}", segment.to_ascii_lowercase());
        let now = (self.clock)();
        let (token, csrf) = (random_token(), random_token());
        let token_hash = sha256_hex(&token);
        let roles_kept = roles_text(roles);
        let expires = micros(now + self.policy.session_for);
        let (l, n, c) = (login.clone(), name.clone(), csrf.clone());
        self.db
            .write(move |tx| {
                let now_us = micros(now);
                // '!' is no PHC string: no password ever matches it.
                tx.conn.execute(
                    "INSERT INTO people_accounts (login, name, roles, password, failures, created_at) VALUES ($1, $2, $3, '!', 0, $4) \
                     ON CONFLICT (login) DO UPDATE SET name = excluded.name, roles = excluded.roles",
                    &[(&l).into(), (&n).into(), (&roles_kept).into(), now_us.into()],
                )?;
                tx.conn.execute(
                    "INSERT INTO people_sessions (token_sha256, login, csrf, created_at, seen_at, expires_at) VALUES ($1, $2, $3, $4, $4, $5)",
                    &[(&token_hash).into(), (&l).into(), (&c).into(), now_us.into(), expires.into()],
                )?;
                Ok(())
            })
            .await?;
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        Ok(Session {
            token,
            csrf,
            account: Account { login, name, roles },
            expires_at: from_micros(expires),
        })
    }

    /// The session a cookie names, while it lasts.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, PeopleError> {
        if token.is_empty() || token.len() > 100 {
            return Ok(None);
        }
        let now = (self.clock)();
        let token_hash = sha256_hex(token);
        let found = {
            let h = token_hash.clone();
            self.db
                .read(move |c| {
                    c.query_one(
                        "SELECT s.csrf, s.seen_at, s.expires_at, a.login, a.name, a.roles \
                         FROM people_sessions s JOIN people_accounts a ON a.login = s.login \
                         WHERE s.token_sha256 = $1",
                        &[h.into()],
                    )?
                    .map(|r| {
                        Ok::<_, DbError>((
                            r.text(0)?,
                            r.i64(1)?,
                            r.i64(2)?,
                            Account {
                                login: r.text(3)?,
                                name: r.text(4)?,
                                roles: parse_roles(&r.text(5)?)?,
                            },
                        ))
                    })
                    .transpose()
                })
                .await?
        };
        let Some((csrf, seen, expires, account)) = found else {
            return Ok(None);
        };
        let now_us = micros(now);
        if expires <= now_us || seen <= micros(now - self.policy.idle_for) {
            return Ok(None);
        }
        if seen <= micros(now - SEEN_EVERY) {
            self.db
                .write(move |tx| {
                    tx.conn.execute(
                        "UPDATE people_sessions SET seen_at = $2 WHERE token_sha256 = $1",
                        &[(&token_hash).into(), now_us.into()],
                    )
                })
                .await?;
        }
        Ok(Some(Session {
            token: token.to_owned(),
            csrf,
            account,
            expires_at: from_micros(expires),
        }))
    }

    /// Ends the session a cookie names (nothing happens for one that is not there).
    pub async fn sign_out(&self, token: &str) -> Result<(), PeopleError> {
        let h = sha256_hex(token);
        self.db
            .write(move |tx| {
                tx.conn.execute(
                    "DELETE FROM people_sessions WHERE token_sha256 = $1",
                    &[(&h).into()],
                )
            })
            .await?;
        Ok(())
    }

    /// Every account, by login.
    pub async fn accounts(&self) -> Result<Vec<Account>, PeopleError> {
        Ok(self
            .db
            .read(|c| {
                c.query(
                    "SELECT login, name, roles FROM people_accounts ORDER BY login",
                    &[],
                )?
                .iter()
                .map(|r| {
                    Ok(Account {
                        login: r.text(0)?,
                        name: r.text(1)?,
                        roles: parse_roles(&r.text(2)?)?,
                    })
                })
                .collect::<Result<Vec<_>, DbError>>()
            })
            .await?)
    }

    /// Tables and columns, for the schema-parity test.
    pub async fn schema(&self) -> Result<Vec<db::ColumnInfo>, PeopleError> {
        Ok(self.db.schema("people_").await?)
    }

    /// Lets queued writes finish and closes the database.
    pub async fn close(&self) -> Result<(), PeopleError> {
        Ok(self.db.close().await?)
    }
}

enum Outcome {
    Refused,
    Locked(i64),
    Welcome(Account, i64),
}

fn roles_text(roles: &[Role]) -> String {
    let mut r: Vec<_> = roles.to_vec();
    r.sort();
    r.dedup();
    r.iter().map(|r| r.code()).collect::<Vec<_>>().join(",")
}

/// Runs Argon2 (tens of milliseconds of CPU) on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PeopleError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PeopleError::Invalid(format!("the password check stopped: {e}")))
}
