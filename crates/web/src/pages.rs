//! The pages: the node's home, its reference data, one resource with search and paging; the
//! assets; a page for what is not here.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use minijinja::value::Serde;

use crate::app::{Shared, in_lang, iso_day, not_found_in};
use crate::{Lang, chosen_lang};

/// Entries of a resource on one page.
const PER_PAGE: usize = 100;

pub(crate) async fn home<H: adapter::ReferenceHoldings>(
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

fn day_of(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .map(|t| iso_day(t.date()))
        .unwrap_or_default()
}

pub(crate) async fn nsi_list<H: adapter::ReferenceHoldings>(
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
        Err(e) => return app.unavailable(lang, "reference data", &e),
    };
    let mut rows = Vec::new();
    for v in &latest {
        let Some(c) = app.content(v) else { continue };
        let (name, items, kind) = match &*c {
            nsi::Content::Resource(r) => (
                in_lang(&r.resource.names, lang.code()),
                r.items.len(),
                "resource",
            ),
            nsi::Content::Crosswalk(x) => (
                in_lang(&x.crosswalk.names, lang.code()),
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

pub(crate) async fn resource<H: adapter::ReferenceHoldings>(
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
        Err(e) => return app.unavailable(lang, "reference data", &e),
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
            let shown = in_lang(&i.names, lang.code());
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
            code => code.clone(), name => in_lang(&r.resource.names, lang.code()), version => v.version,
            published => day_of(v.published_at), q => q, found => hits.len(),
            items => items, page => page_no, pages => pages,
        },
    )
}

pub(crate) async fn not_found<H: adapter::ReferenceHoldings>(
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

pub(crate) async fn asset(Path(name): Path<String>) -> Response {
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
