//! The state every page handler shares: the site, the templates, the caches, the node's part in
//! cross-border sign-in; rendering a page for a person in their language; who is signed in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use crate::{Lang, Site, page};

/// Parsed resources kept (by content hash), so a search does not parse the JSON again.
const CACHED: usize = 16;

/// The last exchange statistics computed, and when.
pub(crate) type Cached = Mutex<Option<(std::time::Instant, Arc<adapter::portal::ExchangeStats>)>>;

pub(crate) struct App<H> {
    pub(crate) site: Site<H>,
    pub(crate) env: minijinja::Environment<'static>,
    pub(crate) cache: Mutex<HashMap<String, Arc<nsi::Content>>>,
    /// Cross-border sign-in, on a node with a federation and a trust list.
    pub(crate) oidc: Option<crate::federated::Oidc>,
    pub(crate) messages: crate::Messages,
    pub(crate) stats: Cached,
}

pub(crate) type Shared<H> = Arc<App<H>>;

impl<H: adapter::ReferenceHoldings> App<H> {
    /// A message in `lang` with no arguments (for text that is not in a template: chart titles).
    pub(crate) fn text(&self, lang: Lang, key: &str) -> String {
        self.messages
            .text(lang, key, &[])
            .unwrap_or_else(|_| key.to_owned())
    }

    /// The name of this node's cookie `what` (`session`, `form`, `oidc`): it names the
    /// segment, since browsers share cookies between ports of one host and nodes side by side
    /// on one (the demo) must not overwrite each other's sessions.
    pub(crate) fn cookie_name(&self, what: &str) -> String {
        format!("ortaq_{}_{what}", self.site.segment.to_lowercase())
    }

    /// The node could not read what the page shows (`what`, for the log): say so, and that it
    /// is passing.
    pub(crate) fn unavailable(
        &self,
        lang: Lang,
        what: &str,
        e: &dyn std::fmt::Display,
    ) -> Response {
        tracing::warn!(error = %e, what, "web: unreadable");
        self.message(
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable-title",
            "unavailable-text",
        )
    }

    /// The person signed in on this request, if any.
    pub(crate) async fn visitor(&self, headers: &HeaderMap) -> Option<people::Session> {
        let token = cookie(headers, &self.cookie_name("session"))?;
        match self.site.people.session(token).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "web: sessions unreadable");
                None
            }
        }
    }

    /// Renders `template` in `lang` for the page at `path` (without the language prefix), for
    /// `who` (their name and sign-out form in the header; the page is then never cached).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn render(
        &self,
        lang: Lang,
        status: StatusCode,
        template: &str,
        here: &str,
        path: &str,
        who: Option<&people::Session>,
        ctx: minijinja::Value,
    ) -> Response {
        let languages: Vec<_> = Lang::ALL
            .iter()
            .map(|l| context! { code => l.code(), name => l.native_name() })
            .collect();
        let me = who.map(|s| {
            context! {
                name => s.account.name.clone(), login => s.account.login.clone(),
                operator => s.account.has(people::Role::Operator) && !s.account.login.contains(':'),
            }
        });
        let csrf = who.map(|s| s.csrf.clone());
        let base = context! {
            lang => lang.code(), languages => languages, here => here, path => path,
            me => me, csrf => csrf, portal => self.site.registry.is_some(),
        };
        let ctx = context! { ..ctx, ..base };
        match self.env.get_template(template).and_then(|t| t.render(ctx)) {
            Ok(html) => {
                let mut r = page(lang, status, html);
                if who.is_some() {
                    r.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("private, no-store"),
                    );
                }
                r
            }
            Err(e) => {
                tracing::error!(error = %e, template, "web: a page did not render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be rendered",
                )
                    .into_response()
            }
        }
    }

    pub(crate) fn message(
        &self,
        lang: Lang,
        status: StatusCode,
        title: &str,
        text: &str,
    ) -> Response {
        self.render(
            lang,
            status,
            "message.html",
            "",
            "/",
            None,
            context! { title => title, text => text },
        )
    }

    /// The content of a stored version, parsed once per hash.
    pub(crate) fn content(&self, v: &adapter::StoredVersion) -> Option<Arc<nsi::Content>> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cache.get(&v.sha256) {
            return Some(c.clone());
        }
        let c: nsi::Content = match serde_json::from_slice(&v.content) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(code = %v.code, error = %e, "web: a stored version does not parse");
                return None;
            }
        };
        let c = Arc::new(c);
        if cache.len() >= CACHED {
            cache.clear();
        }
        cache.insert(v.sha256.clone(), c.clone());
        Some(c)
    }
}

/// `YYYY-MM-DD`, the form the templates' `date` takes.
pub(crate) fn iso_day(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub(crate) fn not_found_in<H: adapter::ReferenceHoldings>(app: &App<H>, lang: Lang) -> Response {
    app.message(
        lang,
        StatusCode::NOT_FOUND,
        "not-found-title",
        "not-found-text",
    )
}

/// A name in the language of `code`, else Russian, else any: the Union's data is always named
/// in Russian.
pub(crate) fn in_lang(names: &std::collections::BTreeMap<String, String>, code: &str) -> String {
    names
        .get(code)
        .or_else(|| names.get("ru"))
        .or_else(|| names.values().next())
        .cloned()
        .unwrap_or_default()
}

/// The value of cookie `name`, if the request has it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
