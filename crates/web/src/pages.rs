//! The pages: the node's home, its reference data, one resource with search and paging; the
//! assets; a page for what is not here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;

use crate::{
    Lang, Site, chosen_lang, console, oidc, opendata, page, portal, root, services, showcase,
    signin,
};

/// Entries of a resource on one page.
const PER_PAGE: usize = 100;
/// Parsed resources kept (by content hash), so a search does not parse the JSON again.
const CACHED: usize = 16;

pub(crate) struct App<H> {
    pub(crate) site: Site<H>,
    pub(crate) env: minijinja::Environment<'static>,
    pub(crate) cache: Mutex<HashMap<String, Arc<nsi::Content>>>,
    /// Cross-border sign-in, on a node with a federation and a trust list.
    pub(crate) oidc: Option<crate::oidc::Oidc>,
    pub(crate) messages: crate::Messages,
    pub(crate) stats: crate::showcase::Cached,
}

pub(crate) type Shared<H> = Arc<App<H>>;

pub(crate) fn routes<H>(app: Shared<H>) -> Router
where
    H: adapter::ReferenceHoldings + 'static,
{
    Router::new()
        .route("/", get(root))
        .route("/assets/{name}", get(asset))
        .route("/{lang}/", get(home::<H>))
        .route("/{lang}/nsi", get(nsi_list::<H>))
        .route("/{lang}/nsi/{code}", get(resource::<H>))
        .route(
            "/{lang}/signin",
            get(signin::form::<H>).post(signin::sign_in::<H>),
        )
        .route("/{lang}/signout", post(signin::sign_out::<H>))
        .route("/{lang}/account", get(signin::account::<H>))
        .route("/{lang}/signin/via/{segment}", get(oidc::start::<H>))
        .route("/{lang}/registry", get(portal::registry::<H>))
        .route("/{lang}/registry/document", get(portal::document::<H>))
        .route("/{lang}/open-data", get(opendata::page::<H>))
        .route("/{lang}/showcases", get(showcase::page::<H>))
        .route("/{lang}/services", get(services::page::<H>))
        .route("/api/services", get(services::list::<H>))
        .route("/api/services/{id}", get(services::one::<H>))
        .route("/api/schemas/{file}", get(services::schema::<H>))
        .route("/open-data/showcases/{file}", get(showcase::csv::<H>))
        .route("/open-data/catalog.jsonld", get(opendata::dcat::<H>))
        .route("/open-data/nsi/{file}", get(opendata::nsi_download::<H>))
        .route("/open-data/{file}", get(opendata::registry_download::<H>))
        // CKAN answers under both; ckanapi calls the unversioned one.
        .route(
            "/api/3/action/{action}",
            get(opendata::ckan::<H>).post(opendata::ckan::<H>),
        )
        .route(
            "/api/action/{action}",
            get(opendata::ckan::<H>).post(opendata::ckan::<H>),
        )
        .route("/{lang}/console", get(console::overview::<H>))
        .route("/{lang}/console/messages", get(console::messages::<H>))
        .route("/{lang}/console/messages/{id}", get(console::message::<H>))
        .route(
            "/{lang}/console/messages/{id}/evidence",
            get(console::evidence::<H>),
        )
        .route(
            "/{lang}/console/tokens",
            get(console::tokens::<H>).post(console::issue::<H>),
        )
        .route(
            "/{lang}/console/tokens/{id}/revoke",
            post(console::revoke::<H>),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oidc::discovery::<H>),
        )
        .route("/oidc/jwks", get(oidc::jwks::<H>))
        .route("/oidc/authorize", get(oidc::authorize::<H>))
        .route("/oidc/token", post(oidc::token::<H>))
        .route("/oidc/callback", get(oidc::callback::<H>))
        .fallback(not_found::<H>)
        .with_state(app)
}

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

    /// The person signed in on this request, if any.
    pub(crate) async fn visitor(&self, headers: &HeaderMap) -> Option<people::Session> {
        let token = signin::cookie(headers, &self.cookie_name("session"))?;
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

async fn home<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let who = app.visitor(&headers).await;
    let s = &app.site;
    app.render(
        lang,
        StatusCode::OK,
        "home.html",
        "home",
        "/",
        who.as_ref(),
        context! {
            segment => s.segment.clone(),
            participants => Serde(&s.participants),
            api => s.api.clone(),
        },
    )
}

/// A name in `lang`, else Russian, else any: reference data is always named in Russian.
fn name_in(names: &std::collections::BTreeMap<String, String>, lang: Lang) -> String {
    names
        .get(lang.code())
        .or_else(|| names.get("ru"))
        .or_else(|| names.values().next())
        .cloned()
        .unwrap_or_default()
}

/// `YYYY-MM-DD`, the form the templates' `date` takes.
pub(crate) fn iso_day(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn day_of(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map(|t| iso_day(t.date()))
        .unwrap_or_default()
}

async fn nsi_list<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let who = app.visitor(&headers).await;
    let latest = match app.site.holdings.latest().await {
        Ok(l) => l,
        Err(e) => return unavailable(&app, lang, &e),
    };
    let mut rows = Vec::new();
    for v in &latest {
        let Some(c) = app.content(v) else { continue };
        let (name, items, kind) = match &*c {
            nsi::Content::Resource(r) => {
                (name_in(&r.resource.names, lang), r.items.len(), "resource")
            }
            nsi::Content::Crosswalk(x) => (
                name_in(&x.crosswalk.names, lang),
                x.mappings.len(),
                "crosswalk",
            ),
        };
        rows.push(context! {
            code => v.code.clone(), name => name, kind => kind, version => v.version,
            published => day_of(v.published_at), items => items,
        });
    }
    app.render(
        lang,
        StatusCode::OK,
        "nsi.html",
        "nsi",
        "/nsi",
        who.as_ref(),
        context! { resources => rows },
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
}

/// The languages whose names are shown beside the page's: the other working languages and
/// those of the member states the reference data names things in.
const OTHER_LANGS: [&str; 6] = ["ru", "kk", "en", "hy", "be", "ky"];

async fn resource<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path((lang, code)): Path<(String, String)>,
    Query(search): Query<Search>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let who = app.visitor(&headers).await;
    let v = match app.site.holdings.version(&code, None).await {
        Ok(Some(v)) => v,
        Ok(None) => return not_found_in(&app, lang),
        Err(e) => return unavailable(&app, lang, &e),
    };
    let Some(c) = app.content(&v) else {
        return not_found_in(&app, lang);
    };
    let nsi::Content::Resource(r) = &*c else {
        return not_found_in(&app, lang);
    };
    let q: String = search.q.chars().take(200).collect();
    let needle = q.trim().to_lowercase();
    let hits: Vec<&nsi::Item> = r
        .items
        .iter()
        .filter(|i| {
            needle.is_empty()
                || i.code.to_lowercase().contains(&needle)
                || i.names.values().any(|n| n.to_lowercase().contains(&needle))
        })
        .collect();
    let pages = hits.len().div_ceil(PER_PAGE).max(1);
    let page_no = search.page.unwrap_or(1).clamp(1, pages);
    let items: Vec<_> = hits
        .iter()
        .skip((page_no - 1) * PER_PAGE)
        .take(PER_PAGE)
        .map(|i| {
            let shown = name_in(&i.names, lang);
            let others: Vec<_> = OTHER_LANGS
                .iter()
                .filter(|l| **l != lang.code())
                .filter_map(|l| i.names.get(*l).map(|n| (l, n)))
                .filter(|(_, n)| **n != shown)
                .map(|(l, n)| context! { lang => *l, name => n.clone() })
                .collect();
            context! {
                code => i.code.clone(), name => shown, others => others,
                valid_from => i.valid_from.map(iso_day),
                valid_to => i.valid_to.map(iso_day),
            }
        })
        .collect();
    app.render(
        lang,
        StatusCode::OK,
        "resource.html",
        "nsi",
        &format!("/nsi/{code}"),
        who.as_ref(),
        context! {
            code => code.clone(), name => name_in(&r.resource.names, lang), version => v.version,
            published => day_of(v.published_at), q => q, found => hits.len(),
            items => items, page => page_no, pages => pages,
        },
    )
}

/// The node could not read what the page shows: say so, and that it is passing.
fn unavailable<H: adapter::ReferenceHoldings>(
    app: &App<H>,
    lang: Lang,
    e: &adapter::HoldingsError,
) -> Response {
    tracing::warn!(error = %e, "web: reference data unreadable");
    app.message(
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable-title",
        "unavailable-text",
    )
}

pub(crate) fn not_found_in<H: adapter::ReferenceHoldings>(app: &App<H>, lang: Lang) -> Response {
    app.message(
        lang,
        StatusCode::NOT_FOUND,
        "not-found-title",
        "not-found-text",
    )
}

async fn not_found<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    headers: HeaderMap,
) -> Response {
    not_found_in(&app, chosen_lang(&headers))
}

/// The assets, in the binary; cached for a day (htmx's name carries its version).
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "htmx-2.0.11.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/htmx-2.0.11.min.js"),
    ),
    (
        "site.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/site.css"),
    ),
    (
        "htmx-LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/htmx-LICENSE"),
    ),
];

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ctype, body)) => {
            let mut r = body.to_vec().into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            r
        }
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
