//! Data showcases (seed 001, item 63d): the exchange through the node over the last twelve
//! months, each view as a chart, a table of the same numbers and a CSV: messages per month,
//! per common process and per pair of states; the time to the processing receipt; refusals by
//! cause. Counts are computed at most once a minute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use crate::Lang;
use crate::app::{Shared, not_found_in};
use crate::charts::{Series, chart};
use crate::opendata::csv_field;

const MONTHS: u32 = 12;
const FRESH: Duration = Duration::from_secs(60);

async fn stats<H: adapter::ReferenceHoldings>(
    app: &Shared<H>,
) -> Option<Result<Arc<adapter::portal::ExchangeStats>, adapter::HoldingsError>> {
    let source = app.site.statistics.clone()?;
    if let Some((at, s)) = app.stats.lock().unwrap_or_else(|p| p.into_inner()).as_ref()
        && at.elapsed() < FRESH
    {
        return Some(Ok(s.clone()));
    }
    Some(source.exchange(MONTHS).await.map(|s| {
        let s = Arc::new(s);
        *app.stats.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), s.clone()));
        s
    }))
}

fn bars(title: &str, name: &str, rows: &[(String, i64)], lang: Lang) -> String {
    let labels: Vec<String> = rows.iter().map(|(l, _)| l.clone()).collect();
    chart(
        title,
        &labels,
        1,
        &[Series {
            name,
            values: rows.iter().map(|(_, n)| *n as f64).collect(),
            kind: "bar",
            class: "s1",
        }],
        &|v| lang.number(v.round() as i64),
    )
}

/// The showcases page.
pub(crate) async fn page<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let s = match stats(&app).await {
        None => return not_found_in(&app, lang),
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "web: statistics unavailable");
            return app.message(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable-title",
                "unavailable-text",
            );
        }
    };
    let who = app.visitor(&headers).await;
    let t = |k: &str| app.text(lang, k);
    let messages = t("showcase-messages");
    let pairs: Vec<(String, i64)> = s
        .per_pair
        .iter()
        .take(12)
        .map(|(a, b, n)| (format!("{a}→{b}"), *n))
        .collect();
    let prs_labels: Vec<String> = s.to_prs.iter().map(|(p, ..)| p.clone()).collect();
    let prs_chart = chart(
        &t("showcase-prs"),
        &prs_labels,
        1,
        &[
            Series {
                name: "p50",
                values: s.to_prs.iter().map(|x| x.2 as f64).collect(),
                kind: "bar",
                class: "s1",
            },
            Series {
                name: "p95",
                values: s.to_prs.iter().map(|x| x.3 as f64).collect(),
                kind: "bar",
                class: "s2",
            },
        ],
        &|v| format!("{} ms", lang.number(v.round() as i64)),
    );
    let refusals: Vec<(String, i64)> = s.refusals.iter().take(10).cloned().collect();
    app.render(
        lang,
        StatusCode::OK,
        "showcases.html",
        "showcases",
        "/showcases",
        who.as_ref(),
        context! {
            months => MONTHS,
            month_chart => bars(&t("showcase-per-month"), &messages, &s.per_month, lang),
            process_chart => bars(&t("showcase-per-process"), &messages, &s.per_process, lang),
            pair_chart => bars(&t("showcase-per-pair"), &messages, &pairs, lang),
            prs_chart => prs_chart,
            refusal_chart => (!refusals.is_empty()).then(|| bars(&t("showcase-refusals"), &messages, &refusals, lang)),
            per_month => s.per_month.clone(), per_process => s.per_process.clone(),
            per_pair => s.per_pair.clone(), to_prs => s.to_prs.clone(), refusals => s.refusals.clone(),
        },
    )
}

/// `/open-data/showcases/{name}.csv`: the numbers of one view.
pub(crate) async fn csv<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(file): Path<String>,
) -> Response {
    let Some(Ok(s)) = stats(&app).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let rows: Vec<Vec<String>> = match file.as_str() {
        "messages-per-month.csv" => std::iter::once(vec!["month".into(), "messages".into()])
            .chain(
                s.per_month
                    .iter()
                    .map(|(m, n)| vec![m.clone(), n.to_string()]),
            )
            .collect(),
        "messages-per-process.csv" => std::iter::once(vec!["process".into(), "messages".into()])
            .chain(
                s.per_process
                    .iter()
                    .map(|(p, n)| vec![p.clone(), n.to_string()]),
            )
            .collect(),
        "messages-per-pair.csv" => {
            std::iter::once(vec!["from".into(), "to".into(), "messages".into()])
                .chain(
                    s.per_pair
                        .iter()
                        .map(|(a, b, n)| vec![a.clone(), b.clone(), n.to_string()]),
                )
                .collect()
        }
        "time-to-prs.csv" => std::iter::once(vec![
            "process".into(),
            "receipts".into(),
            "p50_ms".into(),
            "p95_ms".into(),
        ])
        .chain(
            s.to_prs
                .iter()
                .map(|(p, n, a, b)| vec![p.clone(), n.to_string(), a.to_string(), b.to_string()]),
        )
        .collect(),
        "refusals.csv" => std::iter::once(vec!["cause".into(), "messages".into()])
            .chain(
                s.refusals
                    .iter()
                    .map(|(c, n)| vec![c.clone(), n.to_string()]),
            )
            .collect(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let body: String = rows
        .iter()
        .map(|r| r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",") + "\r\n")
        .collect();
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}
