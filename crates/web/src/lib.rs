//! The web layer every node serves: server-rendered pages in Russian (the default), Kazakh and
//! English, readable without JavaScript (htmx only enhances), with templates, messages and
//! assets in the binary.
//!
//! The language is the path's first segment (`/ru/`, `/kk/`, `/en/`); `/` sends a person to
//! the language of their `lang` cookie (set by every page they read, so a choice sticks), else
//! of their browser's `Accept-Language`, else Russian. Pages read the node only through the
//! adapter boundary's ports (today [`adapter::ReferenceHoldings`]); this crate is the only one
//! that knows HTML.

mod app;
mod charts;
mod console;
mod federated;
pub mod i18n;
mod oidc;
mod opendata;
mod pages;
mod portal;
mod routes;
mod services;
mod showcase;
mod signin;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, State};

pub use i18n::{Lang, Messages};
pub use services::{Catalogue, Service, ServiceDocument};

/// A participant of the node, as the home page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Participant {
    pub address: String,
    pub name: String,
}

/// What the pages show of a node, and how they reach it.
pub struct Site<H> {
    pub segment: String,
    pub participants: Vec<Participant>,
    /// Where the node's OpenAPI description is, when the pages should link to it.
    pub api: Option<String>,
    pub holdings: Arc<H>,
    /// The people who sign in here.
    pub people: Arc<people::People>,
    /// Cookies only over HTTPS (browsers count loopback HTTP as secure too).
    pub secure_cookies: bool,
    /// The node in cross-border sign-in (with a federation and a trust list).
    pub identity: Option<Arc<dyn adapter::Identity>>,
    /// The pages' public address (no trailing '/'): the node's OpenID issuer and client id.
    pub issuer: String,
    /// The node for its operator console.
    pub console: Option<Arc<dyn adapter::console::Console>>,
    /// The public portal's registry of conformity documents (`[web] portal`).
    pub registry: Option<Arc<dyn adapter::portal::Registry>>,
    /// The exchange statistics the portal's showcases show (`[web] portal`).
    pub statistics: Option<Arc<dyn adapter::portal::Statistics>>,
    /// The registry of digital services the node offers.
    pub catalogue: Catalogue,
}

/// The pages of `site`, ready to serve. Fails only if a shipped template or message file is
/// broken (a test renders them all).
pub fn router<H>(site: Site<H>) -> Result<Router, String>
where
    H: adapter::ReferenceHoldings + 'static,
{
    let messages = Messages::load()?;
    let env = environment(messages.clone()).map_err(|e| e.to_string())?;
    let oidc = site
        .identity
        .clone()
        .map(|i| federated::Oidc::new(site.issuer.clone(), i));
    Ok(routes::routes(Arc::new(app::App {
        site,
        env,
        cache: Default::default(),
        oidc,
        messages,
        stats: Default::default(),
    })))
}

/// The templates, with `t`, `number` and `date` in the language of the page being rendered
/// (its `lang` variable): one environment for every request, never a global locale.
fn environment(messages: Messages) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    env.add_function(
        "t",
        move |state: &State, key: &str, kwargs: Kwargs| -> Result<String, minijinja::Error> {
            let lang = page_lang(state);
            let mut args = Vec::new();
            for k in kwargs.args() {
                let v: Value = kwargs.get(k)?;
                let fv = match v.as_i64() {
                    Some(n) => fluent_bundle::FluentValue::from(n),
                    None => fluent_bundle::FluentValue::from(v.to_string()),
                };
                args.push((k.to_owned(), fv));
            }
            let args: Vec<(&str, _)> = args.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            messages
                .text(lang, key, &args)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
        },
    );
    env.add_function("number", |state: &State, n: i64| page_lang(state).number(n));
    env.add_function(
        "date",
        |state: &State, day: &str| -> Result<String, minijinja::Error> {
            let fmt = time::macros::format_description!("[year]-[month]-[day]");
            // Dates come from outside data too: one that does not parse is shown as written.
            Ok(match time::Date::parse(day, fmt) {
                Ok(d) => page_lang(state).date(d),
                Err(_) => day.to_owned(),
            })
        },
    );
    Ok(env)
}

fn page_lang(state: &State) -> Lang {
    state
        .lookup("lang")
        .and_then(|v| v.as_str().and_then(Lang::from_code))
        .unwrap_or(Lang::Ru)
}

/// The templates, in the binary.
const TEMPLATES: [(&str, &str); 16] = [
    ("base.html", include_str!("../templates/base.html")),
    ("home.html", include_str!("../templates/home.html")),
    ("nsi.html", include_str!("../templates/nsi.html")),
    ("resource.html", include_str!("../templates/resource.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("signin.html", include_str!("../templates/signin.html")),
    ("account.html", include_str!("../templates/account.html")),
    ("console.html", include_str!("../templates/console.html")),
    (
        "console_messages.html",
        include_str!("../templates/console_messages.html"),
    ),
    (
        "console_message.html",
        include_str!("../templates/console_message.html"),
    ),
    (
        "console_tokens.html",
        include_str!("../templates/console_tokens.html"),
    ),
    ("registry.html", include_str!("../templates/registry.html")),
    (
        "registry_document.html",
        include_str!("../templates/registry_document.html"),
    ),
    ("opendata.html", include_str!("../templates/opendata.html")),
    (
        "showcases.html",
        include_str!("../templates/showcases.html"),
    ),
    ("services.html", include_str!("../templates/services.html")),
];

/// The language a person gets at `/`: their cookie, then their browser, then Russian.
pub fn chosen_lang(headers: &HeaderMap) -> Lang {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix("lang="))
        .find_map(Lang::from_code);
    cookie
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::negotiate)
        })
        .unwrap_or(Lang::Ru)
}

/// `/` → the person's language.
async fn root(headers: HeaderMap) -> Response {
    let lang = chosen_lang(&headers);
    let mut r = Redirect::to(&format!("/{}/", lang.code())).into_response();
    r.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("cookie, accept-language"),
    );
    r
}

/// Scripts and styles from this node only; forms post here only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

/// [`CSP`], with forms also allowed to end at `origins`: browsers hold a form's whole redirect
/// chain to `form-action`, and a sign-in that a relying node asked for ends there.
pub(crate) fn csp_with_form_targets(origins: &[String]) -> Option<HeaderValue> {
    let extra: Vec<&str> = origins
        .iter()
        .map(String::as_str)
        .filter(|o| {
            (o.starts_with("https://") || o.starts_with("http://"))
                && o.bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'' | b'"'))
        })
        .collect();
    HeaderValue::from_str(&format!("{CSP} {}", extra.join(" "))).ok()
}

/// A page in `lang`: HTML with its language, the cookie that keeps the choice, and headers that
/// allow scripts and styles from this node only.
fn page(lang: Lang, status: StatusCode, html: String) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(lang.code()) {
        h.insert(header::CONTENT_LANGUAGE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    )) {
        h.insert(header::SET_COOKIE, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}
