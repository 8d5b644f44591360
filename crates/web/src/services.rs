//! The registry of digital services (seed 001, items 76–77): every service of the platform a
//! node offers (each common process with its technological documents, roles and schemas; the
//! node's API with its OpenAPI; the portal's open-data and sign-in doors) with owner, version,
//! status, endpoints and documents; as a page, and as a machine-readable discovery API
//! (`/api/services`, `/api/services/{id}`), with each schema downloadable.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::json;

use crate::Lang;
use crate::app::{Shared, in_lang, not_found_in};

/// A document of a service: a technological document (message) or a description.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServiceDocument {
    /// `P.TS.01.MSG.001`, or a file's name.
    pub code: String,
    pub names: BTreeMap<String, String>,
    /// Where it is described: a schema's path on this site, or an address.
    pub href: Option<String>,
}

/// One service of the platform.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Service {
    /// `process:P.TS.01`, `api:KZ`, `opendata:ckan`, `signin:KZ`.
    pub id: String,
    /// `process`, `node-api`, `open-data`, `sign-in`.
    pub kind: String,
    pub names: BTreeMap<String, String>,
    /// The segment that runs it (`EEC` for the Commission's common processes).
    pub owner: String,
    pub version: String,
    /// `active`.
    pub status: String,
    pub endpoints: Vec<String>,
    /// Participants' roles: (code, names).
    pub roles: Vec<(String, BTreeMap<String, String>)>,
    pub documents: Vec<ServiceDocument>,
}

/// The services a node offers, and the schema files they name (by structure code).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub services: Vec<Service>,
    pub schemas: BTreeMap<String, PathBuf>,
}

/// The registry's page.
pub(crate) async fn page<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let who = app.visitor(&headers).await;
    let rows: Vec<_> = app
        .site
        .catalogue
        .services
        .iter()
        .map(|s| {
            context! {
                s => Serde(s), name => in_lang(&s.names, lang.code()),
                roles => s.roles.iter().map(|(c, n)| context! { code => c, name => in_lang(n, lang.code()) }).collect::<Vec<_>>(),
                documents => s.documents.iter().map(|d| context! { code => d.code.clone(), name => in_lang(&d.names, lang.code()), href => d.href.clone() }).collect::<Vec<_>>(),
            }
        })
        .collect();
    app.render(
        lang,
        StatusCode::OK,
        "services.html",
        "services",
        "/services",
        who.as_ref(),
        context! { services => rows },
    )
}

fn cors(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// `/api/services`: every service, as JSON.
pub(crate) async fn list<H: adapter::ReferenceHoldings>(State(app): State<Shared<H>>) -> Response {
    cors(
        Json(json!({
            "node": app.site.segment, "services": app.site.catalogue.services,
        }))
        .into_response(),
    )
}

/// `/api/services/{id}`: one service.
pub(crate) async fn one<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(id): Path<String>,
) -> Response {
    match app.site.catalogue.services.iter().find(|s| s.id == id) {
        Some(s) => cors(Json(s).into_response()),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "title": "no such service", "status": 404, "id": id })),
        )
            .into_response(),
    }
}

/// `/api/schemas/{file}`: a structure's XSD (`R.TR.TS.01.001.xsd`), as shipped with its
/// process package.
pub(crate) async fn schema<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(file): Path<String>,
) -> Response {
    let Some(code) = file.strip_suffix(".xsd") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(path) = app.site.catalogue.schemas.get(code) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Schemas are a few kilobytes, read from the package the node loaded at start.
    let path = path.clone();
    match tokio::task::spawn_blocking(move || std::fs::read(&path))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    {
        Ok(bytes) => {
            let mut r = bytes.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            cors(r)
        }
        Err(e) => {
            tracing::warn!(error = %e, "web: a schema could not be read");
            StatusCode::NOT_FOUND.into_response()
        }
    }
}
