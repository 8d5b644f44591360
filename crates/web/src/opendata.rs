//! Open data: every public registry and reference resource of the node as a dataset with
//! downloads in CSV, JSON and XML; the catalogue in DCAT-AP (JSON-LD); and the subset of the
//! CKAN Action API that open-data tools call (`package_list`, `package_show`,
//! `package_search`, `resource_show`, `organization_list`), answering GET and POST alike.
//!
//! The registry's downloads stream in pages of [`PAGE`] documents, so a download of the whole
//! registry holds one page in memory whatever its size.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde_json::{Value, json};

use crate::Lang;
use crate::app::{Shared, in_lang, not_found_in};

/// Registry documents read per step of a streamed download.
const PAGE: i64 = 1000;
const REGISTRY: &str = "conformity-registry";
const FORMATS: [(&str, &str); 3] = [
    ("csv", "text/csv; charset=utf-8"),
    ("json", "application/json"),
    ("xml", "application/xml"),
];

/// One dataset: a name (the CKAN id), titles and descriptions per language, when it last
/// changed, its version, and where its distributions are.
#[derive(Debug, Clone)]
pub(crate) struct Dataset {
    pub name: String,
    pub title: BTreeMap<String, String>,
    pub notes: BTreeMap<String, String>,
    /// RFC 3339.
    pub modified: String,
    pub version: String,
    /// Path of each distribution on this site, by format (`csv`, `json`, `xml`).
    pub paths: Vec<(&'static str, String)>,
}

/// The dataset name of a reference resource: `nsi-` and its code, lower-cased, dots as dashes.
fn nsi_name(code: &str) -> String {
    format!("nsi-{}", code.to_lowercase().replace('.', "-"))
}

fn rfc3339_of_micros(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Every dataset of the node, the registry first.
pub(crate) async fn datasets<H: adapter::ReferenceHoldings>(
    app: &Shared<H>,
) -> Result<Vec<Dataset>, adapter::HoldingsError> {
    let mut out = Vec::new();
    if let Some(reg) = &app.site.registry {
        let (n, modified) = reg.summary().await?;
        let t = |k: &str| {
            Lang::ALL
                .iter()
                .map(|l| (l.code().to_owned(), app.text(*l, k)))
                .collect::<BTreeMap<_, _>>()
        };
        let mut notes = t("opendata-registry-notes");
        for v in notes.values_mut() {
            *v = format!("{v} ({n})");
        }
        out.push(Dataset {
            name: REGISTRY.into(),
            title: t("registry-title"),
            notes,
            modified,
            version: "current".into(),
            paths: FORMATS
                .iter()
                .map(|(f, _)| (*f, format!("/open-data/{REGISTRY}.{f}")))
                .collect(),
        });
    }
    for v in app.site.holdings.latest().await? {
        let Some(c) = app.content(&v) else { continue };
        let (names, kind) = match &*c {
            nsi::Content::Resource(r) => (r.resource.names.clone(), "resource"),
            nsi::Content::Crosswalk(x) => (x.crosswalk.names.clone(), "crosswalk"),
        };
        let notes = Lang::ALL
            .iter()
            .map(|l| {
                (
                    l.code().to_owned(),
                    app.text(*l, &format!("opendata-nsi-notes-{kind}")),
                )
            })
            .collect();
        let name = nsi_name(&v.code);
        out.push(Dataset {
            paths: FORMATS
                .iter()
                .map(|(f, _)| (*f, format!("/open-data/nsi/{}.{f}", v.code)))
                .collect(),
            name,
            title: names,
            notes,
            modified: rfc3339_of_micros(v.published_at),
            version: v.version.to_string(),
        });
    }
    Ok(out)
}

/// The open-data page: each dataset, its downloads, and the machine-readable doors.
pub(crate) async fn page<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let who = app.visitor(&headers).await;
    let sets = match datasets(&app).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "web: datasets unavailable");
            return app.message(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable-title",
                "unavailable-text",
            );
        }
    };
    let rows: Vec<_> = sets
        .iter()
        .map(|d| {
            context! {
                name => d.name.clone(), title => in_lang(&d.title, lang.code()),
                notes => in_lang(&d.notes, lang.code()), version => d.version.clone(),
                modified => d.modified.get(..10).unwrap_or("").to_owned(),
                paths => d.paths.iter().map(|(f, p)| context! { format => f.to_uppercase(), path => p }).collect::<Vec<_>>(),
            }
        })
        .collect();
    app.render(
        lang,
        StatusCode::OK,
        "opendata.html",
        "opendata",
        "/open-data",
        who.as_ref(),
        context! { datasets => rows },
    )
}

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLUMNS: [&str; 9] = [
    "doc_id",
    "country",
    "kind",
    "status",
    "applicant",
    "products",
    "start_date",
    "valid_until",
    "updated_at",
];

fn fields(e: &adapter::portal::RegistryEntry) -> [&str; 9] {
    [
        &e.doc_id,
        &e.country,
        &e.kind,
        &e.status,
        &e.applicant,
        &e.products,
        &e.start_date,
        &e.valid_until,
        &e.updated_at,
    ]
}

/// One page of the registry in `format`; `first` and `last` say whether it opens or closes
/// the document.
fn chunk(
    format: &str,
    entries: &[adapter::portal::RegistryEntry],
    first: bool,
    last: bool,
) -> String {
    let mut s = String::new();
    match format {
        "csv" => {
            if first {
                s.push_str(&COLUMNS.join(","));
                s.push_str("\r\n");
            }
            for e in entries {
                let row: Vec<String> = fields(e).iter().map(|f| csv_field(f)).collect();
                s.push_str(&row.join(","));
                s.push_str("\r\n");
            }
        }
        "json" => {
            if first {
                s.push('[');
            }
            for (i, e) in entries.iter().enumerate() {
                if !(first && i == 0) {
                    s.push(',');
                }
                s.push_str(&serde_json::to_string(e).unwrap_or_default());
                s.push('\n');
            }
            if last {
                s.push(']');
            }
        }
        _ => {
            if first {
                s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<registry xmlns=\"urn:ortaq:open-data:conformity-registry:v1\">\n");
            }
            for e in entries {
                s.push_str("<document>");
                for (k, v) in COLUMNS.iter().zip(fields(e)) {
                    s.push_str(&format!("<{k}>{}</{k}>", xml_text(v)));
                }
                s.push_str("</document>\n");
            }
            if last {
                s.push_str("</registry>\n");
            }
        }
    }
    s
}

fn download_headers(r: &mut Response, ctype: &'static str, file: &str) {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// `/open-data/{file}`: the registry as CSV, JSON or XML, streamed page by page.
pub(crate) async fn registry_download<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(file): Path<String>,
) -> Response {
    let Some((name, ext)) = file.rsplit_once('.') else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (Some(reg), true, Some((format, ctype))) = (
        app.site.registry.clone(),
        name == REGISTRY,
        FORMATS.iter().find(|(f, _)| *f == ext).copied(),
    ) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let stream = registry_stream(reg, format);
    let mut r = Body::from_stream(stream).into_response();
    download_headers(&mut r, ctype, &file);
    r
}

/// The pages of the registry as chunks of `format`, read one page ahead of the writer.
fn registry_stream(
    reg: Arc<dyn adapter::portal::Registry>,
    format: &'static str,
) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let mut after = String::new();
        let mut first = true;
        loop {
            let page = match reg.entries_after(&after, PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    // The client sees a cut download (not a well-formed one missing rows).
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let last = (page.len() as i64) < PAGE;
            let text = chunk(format, &page, first, last);
            if tx.send(Ok(Bytes::from(text))).await.is_err() {
                return;
            }
            first = false;
            match page.last() {
                Some(e) if !last => after = e.doc_id.clone(),
                _ => return,
            }
        }
    });
    ReceiverStream(rx)
}

/// A stream over a channel's receiver.
struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

/// `/open-data/nsi/{file}`: a reference resource's latest version (or `?version=N`) in the
/// format its extension names.
pub(crate) async fn nsi_download<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(file): Path<String>,
    Query(q): Query<VersionQuery>,
) -> Response {
    let Some((code, ext)) = file.rsplit_once('.') else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some((_, ctype)) = FORMATS.iter().find(|(f, _)| *f == ext).copied() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let format = match nsi::format::Format::parse(ext) {
        Ok(f) => f,
        Err(_) => return StatusCode::NOT_FOUND.into_response(),
    };
    let v = match app.site.holdings.version(code, q.version).await {
        Ok(Some(v)) => v,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "web: reference data unreadable");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let Some(c) = app.content(&v) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut r = nsi::format::write(&c, format).into_response();
    download_headers(&mut r, ctype, &file);
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct VersionQuery {
    version: Option<i64>,
}

fn lang_values(m: &BTreeMap<String, String>) -> Vec<Value> {
    m.iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(l, v)| json!({ "@value": v, "@language": l }))
        .collect()
}

/// `/open-data/catalog.jsonld`: the catalogue in DCAT-AP, as JSON-LD.
pub(crate) async fn dcat<H: adapter::ReferenceHoldings>(State(app): State<Shared<H>>) -> Response {
    let sets = match datasets(&app).await {
        Ok(d) => d,
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let base = &app.site.issuer;
    let publisher = json!({
        "@id": format!("{base}/#publisher"), "@type": "foaf:Agent",
        "foaf:name": lang_values(&Lang::ALL.iter().map(|l| (l.code().to_owned(), app.text(*l, "opendata-publisher"))).collect()),
    });
    let datasets: Vec<Value> = sets
        .iter()
        .map(|d| {
            json!({
                "@id": format!("{base}/open-data/datasets/{}", d.name),
                "@type": "dcat:Dataset",
                "dct:identifier": d.name,
                "dct:title": lang_values(&d.title),
                "dct:description": lang_values(&d.notes),
                "dct:modified": { "@value": d.modified, "@type": "xsd:dateTime" },
                "dcat:version": d.version,
                "dct:publisher": { "@id": format!("{base}/#publisher") },
                "dcat:distribution": d.paths.iter().map(|(f, p)| {
                    let media = FORMATS.iter().find(|(x, _)| x == f).map(|(_, m)| m.split(';').next().unwrap_or(m)).unwrap_or("");
                    json!({
                        "@id": format!("{base}{p}#distribution"),
                        "@type": "dcat:Distribution",
                        "dcat:accessURL": { "@id": format!("{base}{p}") },
                        "dcat:downloadURL": { "@id": format!("{base}{p}") },
                        "dcat:mediaType": { "@id": format!("http://www.iana.org/assignments/media-types/{media}") },
                        "dct:format": f.to_uppercase(),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let catalog = json!({
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
        },
        "@id": format!("{base}/open-data/catalog"),
        "@type": "dcat:Catalog",
        "dct:title": lang_values(&Lang::ALL.iter().map(|l| (l.code().to_owned(), app.text(*l, "opendata-title"))).collect()),
        "dct:publisher": publisher,
        "dcat:dataset": datasets,
    });
    let mut r = Json(catalog).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ld+json"),
    );
    r
}

// ------------------------------------------------------------------ CKAN Action API

fn ckan_ok(result: Value) -> Response {
    let mut r = Json(json!({ "help": "https://docs.ckan.org/en/latest/api/", "success": true, "result": result }))
        .into_response();
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

fn ckan_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "help": "https://docs.ckan.org/en/latest/api/", "success": false,
            "error": { "__type": kind, "message": message },
        })),
    )
        .into_response()
}

const ORGANIZATION: &str = "ortaq";

fn organization<H: adapter::ReferenceHoldings>(app: &Shared<H>) -> Value {
    json!({
        "id": ORGANIZATION, "name": ORGANIZATION, "type": "organization", "state": "active",
        "title": app.text(Lang::Ru, "opendata-publisher"), "is_organization": true,
    })
}

fn package<H: adapter::ReferenceHoldings>(app: &Shared<H>, d: &Dataset) -> Value {
    let base = &app.site.issuer;
    let resources: Vec<Value> = d
        .paths
        .iter()
        .map(|(f, p)| {
            json!({
                "id": format!("{}-{f}", d.name), "package_id": d.name, "name": format!("{} ({})", in_lang(&d.title, "ru"), f.to_uppercase()),
                "url": format!("{base}{p}"), "format": f.to_uppercase(),
                "mimetype": FORMATS.iter().find(|(x, _)| x == f).map(|(_, m)| *m),
                "last_modified": d.modified, "state": "active",
            })
        })
        .collect();
    json!({
        "id": d.name, "name": d.name, "type": "dataset", "state": "active", "private": false,
        "title": in_lang(&d.title, "ru"), "notes": in_lang(&d.notes, "ru"),
        "title_translated": d.title, "notes_translated": d.notes,
        "version": d.version, "metadata_modified": d.modified, "license_id": "other-open",
        "owner_org": ORGANIZATION, "organization": organization(app),
        "num_resources": resources.len(), "resources": resources, "tags": [],
    })
}

/// `/api/3/action/{action}`: parameters from the query (GET) or a JSON or form body (POST),
/// as CKAN takes them.
pub(crate) async fn ckan<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(action): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut params: BTreeMap<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if !body.is_empty() {
        if body.len() > 64 * 1024 {
            return ckan_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Validation Error",
                "the request is too large",
            );
        }
        match serde_json::from_slice::<BTreeMap<String, Value>>(&body) {
            Ok(b) => params.extend(b),
            Err(_) => match serde_urlencoded_pairs(&body) {
                Some(b) => params.extend(b.into_iter().map(|(k, v)| (k, Value::String(v)))),
                None => {
                    return ckan_error(
                        StatusCode::BAD_REQUEST,
                        "Validation Error",
                        "the body is neither JSON nor a form",
                    );
                }
            },
        }
    }
    let text = |k: &str| -> Option<String> {
        match params.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    };
    let sets = match datasets(&app).await {
        Ok(d) => d,
        Err(e) => {
            return ckan_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Internal Error",
                &e.to_string(),
            );
        }
    };
    match action.as_str() {
        "package_list" => ckan_ok(json!(
            sets.iter().map(|d| d.name.clone()).collect::<Vec<_>>()
        )),
        "organization_list" => {
            if text("all_fields").as_deref() == Some("true")
                || params.get("all_fields") == Some(&Value::Bool(true))
            {
                ckan_ok(json!([organization(&app)]))
            } else {
                ckan_ok(json!([ORGANIZATION]))
            }
        }
        "package_show" => {
            let id = text("id").or_else(|| text("name")).unwrap_or_default();
            match sets.iter().find(|d| d.name == id) {
                Some(d) => ckan_ok(package(&app, d)),
                None => ckan_error(StatusCode::NOT_FOUND, "Not Found Error", "Not found"),
            }
        }
        "resource_show" => {
            let id = text("id").unwrap_or_default();
            let found = sets.iter().find_map(|d| {
                let p = package(&app, d);
                p["resources"]
                    .as_array()
                    .and_then(|rs| rs.iter().find(|r| r["id"] == id.as_str()).cloned())
            });
            match found {
                Some(r) => ckan_ok(r),
                None => ckan_error(StatusCode::NOT_FOUND, "Not Found Error", "Not found"),
            }
        }
        "package_search" => {
            let q = text("q").unwrap_or_default().to_lowercase();
            let q = if q == "*:*" { String::new() } else { q };
            let rows = text("rows")
                .and_then(|r| r.parse::<usize>().ok())
                .unwrap_or(10)
                .min(1000);
            let start = text("start")
                .and_then(|r| r.parse::<usize>().ok())
                .unwrap_or(0);
            let hits: Vec<&Dataset> = sets
                .iter()
                .filter(|d| {
                    q.split_whitespace().all(|w| {
                        d.name.contains(w)
                            || d.title.values().any(|t| t.to_lowercase().contains(w))
                            || d.notes.values().any(|t| t.to_lowercase().contains(w))
                    })
                })
                .collect();
            let results: Vec<Value> = hits
                .iter()
                .skip(start)
                .take(rows)
                .map(|d| package(&app, d))
                .collect();
            ckan_ok(
                json!({ "count": hits.len(), "results": results, "sort": "name asc", "facets": {}, "search_facets": {} }),
            )
        }
        _ => ckan_error(
            StatusCode::BAD_REQUEST,
            "Validation Error",
            "this node answers package_list, package_show, package_search, resource_show and organization_list",
        ),
    }
}

/// A form body's pairs (`a=1&b=2`), percent-decoded; None when it is not one.
fn serde_urlencoded_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
