//! The operator console of a node (people with the operator role only): the trust list and its
//! expiry, queues per peer, activity charts, message-log verification, message search with
//! history, envelope and evidence, and the participants' API tokens (issue, revoke).

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use minijinja::value::Serde;

use crate::Lang;
use crate::app::{Shared, iso_day, not_found_in};
use crate::charts::{Series, chart};
use crate::signin::{same_origin, to_sign_in};

/// Messages per page of a search.
const PER_PAGE: i64 = 50;
/// The trust list warns this many days before it runs out.
const WARN_DAYS: i64 = 7;
const HOUR: i64 = 3_600_000_000;

/// `YYYY-MM-DD HH:MM:SS UTC` of microseconds since the epoch: one form for every language,
/// since operators compare times across nodes.
pub(crate) fn moment(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .map(|t| {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                iso_day(t.date()),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

fn micros(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// The signed-in operator and the node's console, or the response that turns the person away.
async fn operator<H: adapter::ReferenceHoldings>(
    app: &Shared<H>,
    lang: Lang,
    path: &str,
    headers: &HeaderMap,
) -> Result<
    (
        people::Session,
        std::sync::Arc<dyn adapter::console::Console>,
    ),
    Response,
> {
    let Some(console) = app.site.console.clone() else {
        return Err(not_found_in(app, lang));
    };
    let Some(s) = app.visitor(headers).await else {
        return Err(to_sign_in(lang, path));
    };
    if !s.account.has(people::Role::Operator) || s.account.login.contains(':') {
        return Err(app.message(
            lang,
            StatusCode::FORBIDDEN,
            "console-forbidden-title",
            "console-forbidden-text",
        ));
    }
    Ok((s, console))
}

fn forged<H: adapter::ReferenceHoldings>(app: &Shared<H>, lang: Lang) -> Response {
    app.message(
        lang,
        StatusCode::FORBIDDEN,
        "form-expired-title",
        "form-expired-text",
    )
}

/// A duration in whole units a person reads at a glance.
fn age(us: i64, lang: Lang) -> String {
    let s = (us / 1_000_000).max(0);
    let (n, unit) = if s < 120 {
        (s, "s")
    } else if s < 7200 {
        (s / 60, "min")
    } else {
        (s / 3600, "h")
    };
    let unit = match (lang, unit) {
        (Lang::Ru, "s") => "с",
        (Lang::Ru, "min") => "мин",
        (Lang::Ru, _) => "ч",
        (Lang::Kk, "s") => "с",
        (Lang::Kk, "min") => "мин",
        (Lang::Kk, _) => "сағ",
        (Lang::En, u) => u,
    };
    format!("{} {unit}", lang.number(n))
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

#[derive(serde::Deserialize)]
pub(crate) struct Verify {
    #[serde(default)]
    verify: Option<String>,
}

/// The overview: trust list, queues, the last 24 hours in charts; the log verified on request.
pub(crate) async fn overview<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    Query(v): Query<Verify>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let (s, c) = match operator(&app, lang, "/console", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = c.now();
    let trust = match c.trust_list() {
        Ok((version, until)) => {
            let days = (until - now).whole_days();
            context! {
                version => version, until => iso_day(until.date()), days => days,
                warn => days < WARN_DAYS,
            }
        }
        Err(adapter::HoldingsError::Refused(why)) => {
            context! { problem => why, warn => true }
        }
        Err(adapter::HoldingsError::Unavailable(_)) => context! { none => true, warn => false },
    };
    let queues = match c.queues().await {
        Ok(q) => q,
        Err(e) => return app.unavailable(lang, "the console", &e),
    };
    let now_us = micros(now);
    let queues: Vec<_> = queues
        .iter()
        .map(|q| {
            context! {
                destination => q.destination.clone(), pending => q.pending,
                in_flight => q.in_flight, retrying => q.retrying,
                oldest => q.oldest_at.map(|o| age(now_us - o, lang)),
            }
        })
        .collect();
    // The last 24 whole hours and the current one.
    let to = (now_us / HOUR + 1) * HOUR;
    let from = to - 24 * HOUR;
    let activity = match c.activity(from, to, HOUR).await {
        Ok(a) => a,
        Err(e) => return app.unavailable(lang, "the console", &e),
    };
    let labels: Vec<String> = activity
        .iter()
        .map(|a| moment(a.start)[11..16].to_owned())
        .collect();
    let t = |k: &str| app.text(lang, k);
    let count = |v: f64| lang.number(v.round() as i64);
    let (accepted, failed) = (t("console-accepted"), t("console-failed"));
    let messages_chart = chart(
        &t("console-chart-messages"),
        &labels,
        3,
        &[
            Series {
                name: &accepted,
                values: activity.iter().map(|a| a.accepted as f64).collect(),
                kind: "bar",
                class: "s1",
            },
            Series {
                name: &failed,
                values: activity.iter().map(|a| a.failed as f64).collect(),
                kind: "bar",
                class: "s2",
            },
        ],
        &count,
    );
    let latency_chart = chart(
        &t("console-chart-latency"),
        &labels,
        3,
        &[
            Series {
                name: "p50",
                values: activity
                    .iter()
                    .map(|a| percentile(&a.delays, 0.5))
                    .collect(),
                kind: "line",
                class: "s1",
            },
            Series {
                name: "p95",
                values: activity
                    .iter()
                    .map(|a| percentile(&a.delays, 0.95))
                    .collect(),
                kind: "line",
                class: "s2",
            },
        ],
        &|v| format!("{} ms", lang.number(v.round() as i64)),
    );
    let hours: Vec<_> = activity
        .iter()
        .zip(&labels)
        .map(|(a, l)| {
            context! {
                hour => l.clone(), accepted => a.accepted, failed => a.failed,
                p50 => percentile(&a.delays, 0.5).round() as i64,
                p95 => percentile(&a.delays, 0.95).round() as i64,
            }
        })
        .collect();
    let log = if v.verify.is_some() {
        match c.verify_log().await {
            Ok(l) => Some(Serde(l)),
            Err(e) => return app.unavailable(lang, "the console", &e),
        }
    } else {
        None
    };
    app.render(
        lang,
        StatusCode::OK,
        "console.html",
        "console",
        "/console",
        Some(&s),
        context! {
            trust => trust, queues => queues, messages_chart => messages_chart,
            latency_chart => latency_chart, hours => hours, log => log,
        },
    )
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct Search {
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    conversation_id: String,
    #[serde(default)]
    participant: String,
    #[serde(default)]
    state: String,
    /// `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<i64>,
}

/// The states a search can ask for.
const STATES: [&str; 9] = [
    "accepted",
    "queued",
    "in_inbox",
    "delivered",
    "acknowledged",
    "sent",
    "received_by_peer",
    "failed",
    "expired",
];

fn day(s: &str, end: bool) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.trim(), fmt).ok()?;
    let d = if end { d.next_day()? } else { d };
    Some(micros(d.midnight().assume_utc()))
}

fn given(s: &str) -> Option<String> {
    let s: String = s.trim().chars().take(300).collect();
    (!s.is_empty()).then_some(s)
}

/// Messages found by identifier, conversation, participant, state and dates.
pub(crate) async fn messages<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    Query(q): Query<Search>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let (s, c) = match operator(&app, lang, "/console/messages", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let state = given(&q.state).filter(|s| STATES.contains(&s.as_str()));
    let query = adapter::console::MessageQuery {
        message_id: given(&q.message_id),
        conversation_id: given(&q.conversation_id),
        participant: given(&q.participant),
        state: state.clone(),
        from: day(&q.from, false),
        to: day(&q.to, true),
        before: q.before,
        limit: PER_PAGE + 1,
    };
    let mut rows = match c.messages(query).await {
        Ok(r) => r,
        Err(e) => return app.unavailable(lang, "the console", &e),
    };
    let more = rows.len() as i64 > PER_PAGE;
    rows.truncate(PER_PAGE as usize);
    let next = more.then(|| rows.last().map(|r| r.row)).flatten();
    let rows: Vec<_> = rows
        .iter()
        .map(|r| context! { m => Serde(r), at => moment(r.accept_time) })
        .collect();
    // The same search, one page on: every field kept, URL-encoded.
    let e = crate::signin::url_encode;
    let keep = format!(
        "message_id={}&conversation_id={}&participant={}&state={}&from={}&to={}",
        e(q.message_id.trim()),
        e(q.conversation_id.trim()),
        e(q.participant.trim()),
        e(state.as_deref().unwrap_or("")),
        e(q.from.trim()),
        e(q.to.trim())
    );
    app.render(
        lang,
        StatusCode::OK,
        "console_messages.html",
        "console",
        "/console/messages",
        Some(&s),
        context! {
            rows => rows, next => next, keep => keep, states => STATES,
            q => context! {
                message_id => q.message_id.trim(), conversation_id => q.conversation_id.trim(),
                participant => q.participant.trim(), state => state, from => q.from.trim(), to => q.to.trim(),
            },
        },
    )
}

/// One message: header identifiers, history, the envelope as stored, the evidence link.
pub(crate) async fn message<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path((lang, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let (s, c) = match operator(&app, lang, "/console/messages", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let m = match c.message(&id).await {
        Ok(Some(m)) => m,
        Ok(None) => return not_found_in(&app, lang),
        Err(e) => return app.unavailable(lang, "the console", &e),
    };
    let history: Vec<_> = m
        .history
        .iter()
        .map(|(state, at, detail)| context! { state => state, at => moment(*at), detail => detail })
        .collect();
    app.render(
        lang,
        StatusCode::OK,
        "console_message.html",
        "console",
        &format!("/console/messages/{}", crate::signin::url_encode(&id)),
        Some(&s),
        context! { m => Serde(&m), at => moment(m.row.accept_time), history => history },
    )
}

/// The evidence container of a message, as a download.
pub(crate) async fn evidence<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path((lang, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let (_, c) = match operator(&app, lang, "/console/messages", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match c.evidence(&id).await {
        Ok(Some(zip)) => {
            let mut r = zip.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            );
            let name: String = id
                .chars()
                .map(|ch| {
                    if ch.is_ascii_alphanumeric() || ch == '-' {
                        ch
                    } else {
                        '_'
                    }
                })
                .collect();
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"evidence-{name}.zip\""))
            {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(None) => not_found_in(&app, lang),
        Err(adapter::HoldingsError::Refused(_)) => app.message(
            lang,
            StatusCode::CONFLICT,
            "console-evidence-none-title",
            "console-evidence-none-text",
        ),
        Err(e) => app.unavailable(lang, "the console", &e),
    }
}

/// The participants' tokens, with the form that issues one.
pub(crate) async fn tokens<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let (s, c) = match operator(&app, lang, "/console/tokens", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    show_tokens(&app, lang, &s, &*c, StatusCode::OK, None, None).await
}

async fn show_tokens<H: adapter::ReferenceHoldings>(
    app: &Shared<H>,
    lang: Lang,
    s: &people::Session,
    c: &dyn adapter::console::Console,
    status: StatusCode,
    issued: Option<(String, String)>,
    notice: Option<minijinja::Value>,
) -> Response {
    let list = match c.tokens().await {
        Ok(t) => t,
        Err(e) => return app.unavailable(lang, "the console", &e),
    };
    let now = micros(c.now());
    let list: Vec<_> = list
        .iter()
        .map(|t| {
            let state = match (t.revoked_at, t.expires_at) {
                (Some(_), _) => "revoked",
                (None, Some(e)) if e <= now => "expired",
                _ => "valid",
            };
            context! {
                t => Serde(t), created => moment(t.created_at),
                expires => t.expires_at.map(moment), revoked => t.revoked_at.map(moment),
                state => state,
            }
        })
        .collect();
    let mut r = app.render(
        lang,
        status,
        "console_tokens.html",
        "console",
        "/console/tokens",
        Some(s),
        context! {
            tokens => list, participants => c.participants(),
            issued => issued.map(|(p, t)| context! { participant => p, token => t }),
            notice => notice,
        },
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct Issue {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    participant: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    days: String,
}

/// Issues a token and shows it, once.
pub(crate) async fn issue<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path(lang): Path<String>,
    headers: HeaderMap,
    Form(f): Form<Issue>,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let (s, c) = match operator(&app, lang, "/console/tokens", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !s.csrf_matches(&f.csrf) || !same_origin(&headers) {
        return forged(&app, lang);
    }
    let days = match f.days.trim() {
        "" => None,
        d => match d.parse::<u32>() {
            Ok(n) if (1..=3650).contains(&n) => Some(n),
            _ => {
                let notice = context! { key => "console-token-days-invalid" };
                return show_tokens(
                    &app,
                    lang,
                    &s,
                    &*c,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some(notice),
                )
                .await;
            }
        },
    };
    let label: String = f.label.trim().chars().take(100).collect();
    match c.issue_token(&f.participant, &label, days).await {
        Ok(token) => {
            tracing::info!(operator = %s.account.login, participant = %f.participant, "web: a token was issued");
            show_tokens(
                &app,
                lang,
                &s,
                &*c,
                StatusCode::OK,
                Some((f.participant.clone(), token)),
                None,
            )
            .await
        }
        Err(adapter::HoldingsError::Refused(_)) => {
            let notice = context! { key => "console-token-participant-unknown" };
            show_tokens(
                &app,
                lang,
                &s,
                &*c,
                StatusCode::BAD_REQUEST,
                None,
                Some(notice),
            )
            .await
        }
        Err(e) => app.unavailable(lang, "the console", &e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Revoke {
    #[serde(default)]
    csrf: String,
}

/// Revokes one token; the node refuses it within a second.
pub(crate) async fn revoke<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path((lang, id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(f): Form<Revoke>,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let (s, c) = match operator(&app, lang, "/console/tokens", &headers).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !s.csrf_matches(&f.csrf) || !same_origin(&headers) {
        return forged(&app, lang);
    }
    match c.revoke_token(&id).await {
        Ok(_) => {
            tracing::info!(operator = %s.account.login, token = %id, "web: a token was revoked");
            Redirect::to(&format!("/{}/console/tokens", lang.code())).into_response()
        }
        Err(adapter::HoldingsError::Refused(_)) => not_found_in(&app, lang),
        Err(e) => app.unavailable(lang, "the console", &e),
    }
}
