//! Signing in and out, and the person's own page: session cookies, the form tokens that stop
//! another site from posting as the person (CSRF), and the refusals a person reads.
//!
//! Before sign-in there is no session to hold a form token, so the sign-in form's token is a
//! random cookie of its own, sent back in the form (a double submit: another site can make the
//! browser post, but cannot read or set the cookie). After sign-in every form carries the
//! session's token. Every post must also come from this site (`Origin`, `Sec-Fetch-Site`).

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use minijinja::context;
use rand::RngCore;

use crate::Lang;
use crate::app::{Shared, cookie, not_found_in};

pub(crate) fn random() -> String {
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Whether a post comes from a page of this site. Browsers send `Origin` on every post and
/// `Sec-Fetch-Site` on most; a post without either is from a program, which the form token
/// still has to satisfy.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(site, Some(s) if s != "same-origin" && s != "none") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

/// Gives the browser the cookie of session `s`, for as long as the session lasts.
pub(crate) fn set_session<H: adapter::ReferenceHoldings>(
    app: &Shared<H>,
    r: &mut Response,
    s: &people::Session,
) {
    let max_age = (s.expires_at - time::OffsetDateTime::now_utc()).whole_seconds();
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(
            &app.cookie_name("session"),
            &s.token,
            Some(max_age.max(0)),
            app.site.secure_cookies,
        ),
    );
}

/// Whether `next` is a path on this site (never another site's address).
pub(crate) fn is_local(n: &str) -> bool {
    n.starts_with('/')
        && !n.starts_with("//")
        && !n.contains('\\')
        && n.len() <= 2000
        && n.bytes().all(|b| b.is_ascii_graphic())
}

/// Where a person goes after signing in: a path on this site only.
fn local_path(next: Option<&str>, lang: Lang) -> String {
    match next {
        Some(n) if is_local(n) => n.to_owned(),
        _ => format!("/{}/account", lang.code()),
    }
}

pub(crate) fn cookie_header(
    name: &str,
    value: &str,
    max_age: Option<i64>,
    secure: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(s) = max_age {
        c.push_str(&format!("; Max-Age={s}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

#[derive(serde::Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

#[derive(serde::Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    form: String,
    next: Option<String>,
}

/// The sign-in form, with a fresh form token when the browser has none.
pub(crate) async fn form<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    Query(next): Query<Next>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let who = app.visitor(&headers).await;
    if who.is_some() {
        return Redirect::to(&local_path(next.next.as_deref(), lang)).into_response();
    }
    show_form(
        &app,
        &headers,
        lang,
        StatusCode::OK,
        next.next.as_deref(),
        "",
        None,
    )
}

fn show_form<H: adapter::ReferenceHoldings>(
    app: &Shared<H>,
    headers: &HeaderMap,
    lang: Lang,
    status: StatusCode,
    next: Option<&str>,
    login: &str,
    problem: Option<minijinja::Value>,
) -> Response {
    // The other nodes a person may sign in through, as the trust list names them.
    let elsewhere: Vec<_> = app
        .oidc
        .as_ref()
        .map(|o| o.providers())
        .unwrap_or_default()
        .into_iter()
        .map(|(segment, _)| segment)
        .collect();
    let token = cookie(headers, &app.cookie_name("form"))
        .filter(|t| t.len() == 32)
        .map(str::to_owned)
        .unwrap_or_else(random);
    let mut r = app.render(
        lang,
        status,
        "signin.html",
        "signin",
        "/signin",
        None,
        context! {
            form => token.clone(), next => next.map(|n| local_path(Some(n), lang)),
            login => login, problem => problem, elsewhere => elsewhere,
            next_q => next.filter(|n| is_local(n)).map(url_encode),
        },
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(
            &app.cookie_name("form"),
            &token,
            None,
            app.site.secure_cookies,
        ),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Signing in may end at a relying node of the trust list (cross-border sign-in).
    if let Some(o) = &app.oidc
        && let Some(v) = crate::csp_with_form_targets(&o.relying_origins())
    {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// Checks a password: a session and the page the person came for, or the form again with why.
pub(crate) async fn sign_in<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let form_ok = cookie(&headers, &app.cookie_name("form")).is_some_and(|c| same(c, &f.form));
    if !form_ok || !same_origin(&headers) {
        return app.message(
            lang,
            StatusCode::FORBIDDEN,
            "form-expired-title",
            "form-expired-text",
        );
    }
    let login = f.login.trim().to_lowercase();
    let next = f.next.as_deref();
    match app.site.people.sign_in(&login, &f.password).await {
        Ok(people::SignIn::Welcome(s)) => {
            tracing::info!(login = %s.account.login, "web: signed in");
            let mut r = Redirect::to(&local_path(next, lang)).into_response();
            set_session(&app, &mut r, &s);
            // A new form token after each sign-in, so one seen before it is worth nothing.
            r.headers_mut().append(
                header::SET_COOKIE,
                cookie_header(
                    &app.cookie_name("form"),
                    "",
                    Some(0),
                    app.site.secure_cookies,
                ),
            );
            r
        }
        Ok(people::SignIn::Refused) => {
            tracing::info!(%login, "web: a sign-in was refused");
            let problem = context! { key => "signin-refused" };
            show_form(
                &app,
                &headers,
                lang,
                StatusCode::UNAUTHORIZED,
                next,
                &login,
                Some(problem),
            )
        }
        Ok(people::SignIn::Locked { until }) => {
            tracing::warn!(%login, %until, "web: a sign-in to a locked account");
            let problem = context! {
                key => "signin-locked",
                time => format!("{:02}:{:02} UTC", until.hour(), until.minute()),
            };
            let mut r = show_form(
                &app,
                &headers,
                lang,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                &login,
                Some(problem),
            );
            let wait = (until - time::OffsetDateTime::now_utc())
                .whole_seconds()
                .max(1);
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "web: the accounts could not be read");
            app.message(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable-title",
                "unavailable-text",
            )
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (its form token must come with the request).
pub(crate) async fn sign_out<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let lang = Lang::from_code(&lang).unwrap_or(Lang::Ru);
    let Some(s) = app.visitor(&headers).await else {
        return Redirect::to(&format!("/{}/", lang.code())).into_response();
    };
    if !s.csrf_matches(&f.csrf) || !same_origin(&headers) {
        return app.message(
            lang,
            StatusCode::FORBIDDEN,
            "form-expired-title",
            "form-expired-text",
        );
    }
    if let Err(e) = app.site.people.sign_out(&s.token).await {
        tracing::error!(error = %e, "web: a session could not be ended");
        return app.message(
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable-title",
            "unavailable-text",
        );
    }
    let mut r = Redirect::to(&format!("/{}/", lang.code())).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(
            &app.cookie_name("session"),
            "",
            Some(0),
            app.site.secure_cookies,
        ),
    );
    r
}

/// The person's own page: who they are here, their roles, when the session ends.
pub(crate) async fn account<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let Some(s) = app.visitor(&headers).await else {
        return to_sign_in(lang, "/account");
    };
    let roles: Vec<_> = s.account.roles.iter().map(|r| r.code()).collect();
    let until = s.expires_at;
    app.render(
        lang,
        StatusCode::OK,
        "account.html",
        "account",
        "/account",
        Some(&s),
        context! {
            roles => roles,
            until_day => crate::app::iso_day(until.date()),
            until_time => format!("{:02}:{:02} UTC", until.hour(), until.minute()),
        },
    )
}

/// A page for people signed in: the sign-in form first, then back to `path`.
pub(crate) fn to_sign_in(lang: Lang, path: &str) -> Response {
    let next = format!("/{}{}", lang.code(), path);
    let q: String = url_encode(&next);
    Redirect::to(&format!("/{}/signin?next={q}", lang.code())).into_response()
}

pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
