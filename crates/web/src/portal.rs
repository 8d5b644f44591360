//! The public portal's common information resource: the unified registry of conformity
//! documents, browsed, filtered by state and status, searched by any word of its names and
//! codes, with a page per document and its status history. No account needed.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use minijinja::value::Serde;

use crate::Lang;
use crate::app::{Shared, not_found_in};

/// Documents per page.
const PER_PAGE: i64 = 50;
/// The member states, as the registry's country codes name them.
pub(crate) const STATES: [&str; 5] = ["AM", "BY", "KZ", "KG", "RU"];
/// The official document status codes (P.TS.01's rule on trsdo:DocStatusCode).
pub(crate) const STATUSES: [&str; 6] = ["01", "02", "03", "04", "05", "09"];

#[derive(serde::Deserialize, Default)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    status: String,
    page: Option<i64>,
}

/// The registry: a search form that works without JavaScript, and a page of documents.
pub(crate) async fn registry<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    Query(s): Query<Search>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let Some(reg) = app.site.registry.clone() else {
        return not_found_in(&app, lang);
    };
    let who = app.visitor(&headers).await;
    let q: String = s.q.trim().chars().take(200).collect();
    let country = STATES
        .contains(&s.country.as_str())
        .then(|| s.country.clone());
    let status = STATUSES
        .contains(&s.status.as_str())
        .then(|| s.status.clone());
    let page_no = s.page.unwrap_or(1).clamp(1, 100_000);
    let found = reg
        .search(adapter::portal::RegistryQuery {
            text: (!q.is_empty()).then(|| q.clone()),
            country: country.clone(),
            status: status.clone(),
            offset: (page_no - 1) * PER_PAGE,
            limit: PER_PAGE,
        })
        .await;
    let found = match found {
        Ok(f) => f,
        Err(e) => return app.unavailable(lang, "the registry", &e),
    };
    let pages = ((found.total + PER_PAGE - 1) / PER_PAGE).max(1);
    let e = crate::signin::url_encode;
    let keep = format!(
        "q={}&country={}&status={}",
        e(&q),
        e(country.as_deref().unwrap_or("")),
        e(status.as_deref().unwrap_or(""))
    );
    app.render(
        lang,
        StatusCode::OK,
        "registry.html",
        "registry",
        "/registry",
        who.as_ref(),
        context! {
            q => q, country => country, status => status, states => STATES, statuses => STATUSES,
            entries => Serde(&found.entries), found => found.total, page => page_no, pages => pages,
            keep => keep,
        },
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct Which {
    #[serde(default)]
    id: String,
}

/// One document: what it certifies, for whom, its validity, its statuses over time, and its
/// record as registered.
pub(crate) async fn document<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    Query(w): Query<Which>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let Some(reg) = app.site.registry.clone() else {
        return not_found_in(&app, lang);
    };
    let who = app.visitor(&headers).await;
    let id: String = w.id.chars().take(200).collect();
    let d = match reg.document(&id).await {
        Ok(Some(d)) => d,
        Ok(None) => return not_found_in(&app, lang),
        Err(e) => return app.unavailable(lang, "the registry", &e),
    };
    let products: Vec<String> = d
        .entry
        .products
        .split("; ")
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    let history: Vec<_> = d
        .history
        .iter()
        .map(|(status, at)| context! { status => status, day => at.get(..10).unwrap_or(at) })
        .collect();
    app.render(
        lang,
        StatusCode::OK,
        "registry_document.html",
        "registry",
        &format!("/registry/document?id={}", crate::signin::url_encode(&id)),
        who.as_ref(),
        context! {
            d => Serde(&d.entry), products => products, history => history, xml => d.xml,
        },
    )
}
