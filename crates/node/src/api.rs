//! The adapter API: REST/JSON for authorities' information systems (submit, inbox with cursor
//! and long-poll, acknowledgement, status and history), a SOAP passthrough for ISs that speak
//! Decision No. 5 themselves, and `/health`, `/metrics`, `/openapi.json`.
//!
//! Errors are `application/problem+json` (RFC 9457) on the REST side and SOAP Faults on the
//! SOAP side. A participant sees only its own messages.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

pub use adapter::wire::{
    AckBody, InboxMessage, InboxPage, Problem, ReceiptBody, StateChangeBody, StatusBody,
    TIMESTAMP_HEADER, TIMESTAMP_PROOF_HEADER, TRACK_ID_HEADER,
};

use crate::local::{
    fault_status, inbox_page, problem, problem_of, receipt_body, stamp_header, status_body,
};
use crate::{Node, NodeError, Submission, from_micros};

type AppState = Arc<Node>;

/// The most bytes of an RFC 3161 request: a `TimeStampReq` is a hash and a few fields.
const MAX_TSA_REQUEST: usize = 16 * 1024;

pub fn router(node: Arc<Node>) -> Router {
    let limits = &node.config().limits;
    // A JSON body carries the XML escaped, which can double it.
    let json = limits.max_envelope_bytes * 2 + 64 * 1024;
    // Each door takes no more than its work needs: a whole envelope for SOAP, a signed
    // document for the trusted third party, a hash for the time-stamp authority.
    let soap_limit = DefaultBodyLimit::max(limits.max_envelope_bytes + 64 * 1024);
    let ttp_limit = DefaultBodyLimit::max(limits.max_ttp_document_bytes);
    let tsa_limit = DefaultBodyLimit::max(MAX_TSA_REQUEST);
    Router::new()
        .route("/v1/messages", post(submit))
        .route("/v1/exchange", post(exchange))
        .route("/v1/messages/{message_id}", get(status))
        .route("/v1/messages/{message_id}/envelope", get(envelope_bytes))
        .route("/v1/messages/{message_id}/evidence", get(evidence))
        .route("/v1/inbox", get(inbox))
        .route("/v1/inbox/{message_id}/ack", post(ack))
        .route("/v1/soap", post(soap).layer(soap_limit))
        .route("/v1/nsi", get(nsi_list))
        .route("/v1/nsi/{resource}/items/{code}", get(nsi_lookup))
        .route("/v1/nsi/{resource}/search", get(nsi_search))
        .route("/v1/nsi/{resource}/versions", get(nsi_versions))
        .route("/v1/nsi/{resource}/versions/{version}", get(nsi_export))
        .route("/v1/nsi/{resource}/diff", get(nsi_diff))
        .route("/v1/ttp/receipts", post(ttp_receipt).layer(ttp_limit))
        .route("/v1/tsa", post(tsa_stamp).layer(tsa_limit))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(json))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(BodyBudget::new(
                limits.max_body_bytes_in_flight,
                json,
                Duration::from_secs(limits.body_timeout_secs.max(1)),
            )),
            body_budget,
        ))
        .with_state(node)
}

/// The request bodies the API holds at once, in KiB: each body is counted from its
/// `Content-Length` before a byte of it is read, and given back when its answer is made.
struct BodyBudget {
    kib: Arc<tokio::sync::Semaphore>,
    total_kib: u32,
    /// What a body of unstated length counts as: the largest any route takes.
    unstated: usize,
    /// Within which a request with a body is received and answered.
    deadline: Duration,
}

impl BodyBudget {
    fn new(bytes: usize, unstated: usize, deadline: Duration) -> BodyBudget {
        let total_kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS as u32);
        BodyBudget {
            kib: Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
            unstated,
            deadline,
        }
    }
}

async fn body_budget(
    State(budget): State<Arc<BodyBudget>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let stated = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // RFC 9112 section 6.3: a request with neither Content-Length nor Transfer-Encoding has no
    // body (a bodyless POST, such as an acknowledgement, must not cost the largest body).
    let bodiless = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) || !req.headers().contains_key(header::TRANSFER_ENCODING);
    let bytes = match stated {
        Some(n) => n,
        None if bodiless => 0,
        None => budget.unstated,
    };
    if bytes == 0 {
        return next.run(req).await;
    }
    let kib = u32::try_from(bytes.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .min(budget.total_kib);
    let Ok(_held) = budget.kib.clone().try_acquire_many_owned(kib) else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the node holds as many request bodies as it allows; retry in a moment".into(),
            None,
        )
        .into_response();
    };
    // A body that trickles in would hold its share of the budget for ever.
    match tokio::time::timeout(budget.deadline, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            format!(
                "the request was not received and answered within {} s",
                budget.deadline.as_secs()
            ),
            None,
        )
        .into_response(),
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ortaq adapter API",
        description = "How an authority's information system exchanges Decision No. 5 e-documents through its node of the EAEU integrated information system.",
        version = "1"
    ),
    paths(submit, exchange, status, envelope_bytes, evidence, inbox, ack, soap, nsi_list, nsi_lookup, nsi_search, nsi_versions, nsi_export, nsi_diff, ttp_receipt, tsa_stamp, health),
    modifiers(&BearerAuth),
    tags((name = "messages"), (name = "inbox"), (name = "reference data"), (name = "trust"), (name = "operations"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The committed OpenAPI document, pretty-printed.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

// ---------------------------------------------------------------- errors

/// An error answer: an RFC 9457 problem document.
pub struct ApiError(Problem);

impl ApiError {
    fn new(status: StatusCode, kind: &str, detail: String, rule: Option<String>) -> ApiError {
        ApiError(problem(status.as_u16(), kind, detail, rule))
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        ApiError(problem_of(e))
    }
}

impl From<crate::heavy::HeavyError> for ApiError {
    fn from(e: crate::heavy::HeavyError) -> Self {
        ApiError(problem_of(e.into()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Busy and unavailable are passing states: say when to come back.
        let retry = status == StatusCode::SERVICE_UNAVAILABLE;
        let mut r = (status, Json(self.0)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

// ---------------------------------------------------------------- authentication

/// The participant whose token came with the request.
pub struct Caller(pub String);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, node: &AppState) -> Result<Self, ApiError> {
        let unauthorized =
            |d: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", d.into(), None);
        // Over TLS with a client CA, a certificate may stand in for the token; a token, when
        // sent as well, is what counts.
        if parts.headers.get(header::AUTHORIZATION).is_none()
            && let Some(cert) = parts.extensions.get::<transport::ClientCertificate>()
        {
            return node.participant_of_certificate(&cert.0).map(Caller).ok_or_else(|| {
                unauthorized(
                    "the client certificate names no participant of this node (a URI in subjectAltName)",
                )
            });
        }
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // RFC 7235: the scheme is case-insensitive ("bearer", "BEARER").
            .and_then(|v| {
                v.split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token)
            })
            .ok_or_else(|| {
                unauthorized("send the participant's API token as 'Authorization: Bearer <token>'")
            })?;
        match node.authenticate(token.trim()).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(unauthorized("unknown or revoked API token")),
        }
    }
}

/// A reader of reference data: anyone when `[nsi] public_reads` (the default: reference data
/// is open data), otherwise a participant with a token.
pub struct NsiReader;

impl FromRequestParts<AppState> for NsiReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, node: &AppState) -> Result<Self, ApiError> {
        if node.config().nsi_public_reads() {
            return Ok(NsiReader);
        }
        Caller::from_request_parts(parts, node)
            .await
            .map(|_| NsiReader)
    }
}

// ---------------------------------------------------------------- messages

/// Send a message. Answers only after the message is durably stored.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", request_body = Submission,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Accepted and stored", body = ReceiptBody),
        (status = 200, description = "This MessageID was accepted before; the original receipt", body = ReceiptBody),
        (status = 400, description = "The message breaks a Decision No. 5 rule", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The MessageID cannot be accepted from this sender", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown recipient or no route to its segment", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored; retry", body = Problem, content_type = "application/problem+json"),
    ))]
async fn submit(
    State(node): State<AppState>,
    Caller(p): Caller,
    body: Result<Json<Submission>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(r) = body
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-json", e.body_text(), None))?;
    let receipt = node.submit(&p, r).await?;
    let code = if receipt.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((code, Json(receipt_body(receipt))).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExchangeQuery {
    /// Seconds to wait for the answer (default 30, at most 300); never longer than the
    /// transaction's response time when the node knows the process.
    #[serde(default)]
    pub wait: Option<u64>,
}

/// What answered a request: its receipt, and the answer as the inbox hands it out.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExchangeBody {
    pub receipt: ReceiptBody,
    /// The response (or the ERR or Fault that ends the exchange). It stays in your inbox until
    /// you acknowledge it, as any message does.
    pub answer: InboxMessage,
}

/// Send a request and wait for its answer (the synchronous adapter). The request is stored
/// and delivered exactly as by `POST /v1/messages`; an answer that comes after the wait waits
/// in your inbox.
#[utoipa::path(post, path = "/v1/exchange", tag = "messages", request_body = Submission,
    params(ExchangeQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The answer", body = ExchangeBody),
        (status = 400, description = "The message breaks a Decision No. 5 rule", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a question/answer transaction", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Sent, but no answer within the wait; it will come to your inbox", body = Problem, content_type = "application/problem+json"),
    ))]
async fn exchange(
    State(node): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<ExchangeQuery>,
    body: Result<Json<Submission>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(r) = body
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-json", e.body_text(), None))?;
    let wait = Duration::from_secs(q.wait.unwrap_or(30).min(300));
    let (receipt, answer) = node.exchange(&p, r, wait).await?;
    let id = receipt.message_id.to_string();
    match answer {
        Some(item) => {
            let answer = inbox_page(vec![item], 0)
                .messages
                .pop()
                .ok_or_else(|| ApiError::from(NodeError::Internal("empty answer".into())))?;
            Ok(Json(ExchangeBody {
                receipt: receipt_body(receipt),
                answer,
            })
            .into_response())
        }
        None => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "no-answer-yet",
            format!(
                "message {id} was accepted and sent, but nothing answered it within {} s; the answer will wait in your inbox",
                wait.as_secs()
            ),
            None,
        )),
    }
}

/// Status and history of a message you sent or received.
#[utoipa::path(get, path = "/v1/messages/{message_id}", tag = "messages",
    params(("message_id" = String, Path, description = "urn:uuid:…")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = StatusBody),
        (status = 404, description = "No such message among yours", body = Problem, content_type = "application/problem+json"),
    ))]
async fn status(
    State(node): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<StatusBody>, ApiError> {
    let (m, h) = node.status(&p, &id).await?;
    Ok(Json(status_body(m, h)))
}

/// The stored envelope, byte for byte.
#[utoipa::path(get, path = "/v1/messages/{message_id}/envelope", tag = "messages",
    params(("message_id" = String, Path, description = "urn:uuid:…")),
    security(("bearer" = [])),
    responses((status = 200, content_type = "application/soap+xml", body = String), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn envelope_bytes(
    State(node): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let b = node.envelope_of(&p, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        b,
    )
        .into_response())
}

/// The evidence of a message, in one ZIP container (ASiC-E style): the envelope as stored, the
/// hop signature, the e-document with its signature, the TTP receipt and its time stamp (for a
/// legally significant message), and the message log up to a signed checkpoint.
/// `ortaq evidence verify` checks it offline.
#[utoipa::path(get, path = "/v1/messages/{message_id}/evidence", tag = "messages",
    params(("message_id" = String, Path, description = "urn:uuid:…")),
    security(("bearer" = [])),
    responses((status = 200, content_type = "application/vnd.etsi.asic-e+zip", body = Vec<u8>), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn evidence(
    State(node): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    // The same rule as for the envelope: only the sender or the recipient.
    node.envelope_of(&p, &id).await?;
    let zip = crate::evidence::export(&node, &id).await?;
    Ok(([(header::CONTENT_TYPE, crate::evidence::MIMETYPE)], zip).into_response())
}

// ---------------------------------------------------------------- trust

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiptQuery {
    /// The moment the signature is judged at (RFC 3339); now when absent.
    pub moment: Option<String>,
}

/// A trusted third party receipt for a signed e-document: the signature, the signer
/// certificate's chain to a CA of the trust list, the state's algorithms, validity and
/// revocation, all as of the moment; the receipt (XML) is signed by this node's TTP key.
#[utoipa::path(post, path = "/v1/ttp/receipts", tag = "trust", params(ReceiptQuery),
    request_body(content = String, content_type = "application/xml", description = "The signed e-document (enveloped XMLDSig)"),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "application/xml", body = String, description = "The signed receipt; its Verdict is valid or invalid, with a coded reason per failure"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "No trust service here, or no valid trust list")))]
async fn ttp_receipt(
    State(node): State<AppState>,
    Caller(_p): Caller,
    Query(q): Query<ReceiptQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let doc = String::from_utf8(body.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "the document must be UTF-8".into(),
            None,
        )
    })?;
    let (receipt, stamp) = crate::local::ttp_receipt(&node, doc, q.moment.as_deref())
        .await
        .map_err(ApiError)?;
    let mut resp = (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        receipt,
    )
        .into_response();
    if let Some(stamp) = stamp {
        let h = resp.headers_mut();
        let value = |s: String| {
            HeaderValue::from_str(&s).map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ttp-unavailable",
                    e.to_string(),
                    None,
                )
            })
        };
        h.insert(TIMESTAMP_HEADER, value(stamp_header(&stamp))?);
        h.insert(TIMESTAMP_PROOF_HEADER, value(stamp.proof)?);
    }
    Ok(resp)
}

/// RFC 3161 over HTTP (§3.4): a DER `TimeStampReq` in, a DER `TimeStampResp` out. A request
/// this authority cannot honour gets a rejection status inside the response, as the RFC says.
#[utoipa::path(post, path = "/v1/tsa", tag = "trust",
    request_body(content = Vec<u8>, content_type = "application/timestamp-query", description = "DER TimeStampReq (SHA-256 imprint)"),
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = "application/timestamp-reply", body = Vec<u8>, description = "DER TimeStampResp: a token, or a rejection with its reason"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "No time-stamp authority here")))]
async fn tsa_stamp(
    State(node): State<AppState>,
    Caller(_p): Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let st = node.stamping().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "tsa-unavailable",
            "this node runs no time-stamp authority ([tsa])".into(),
            None,
        )
    })?;
    Ok((
        [(header::CONTENT_TYPE, "application/timestamp-reply")],
        st.respond(&body),
    )
        .into_response())
}

// ---------------------------------------------------------------- inbox

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Cursor: return messages after this one (the `cursor` of the previous answer); 0 from
    /// the start.
    #[serde(default)]
    pub after: i64,
    /// At most this many messages (1-1000, default 100).
    #[serde(default)]
    pub limit: Option<i64>,
    /// Seconds to wait for a message when none is there (long poll, at most 60).
    #[serde(default)]
    pub wait: Option<u64>,
}

/// Messages waiting for you, oldest first. A message stays until you acknowledge it.
#[utoipa::path(get, path = "/v1/inbox", tag = "inbox", params(InboxQuery),
    security(("bearer" = [])),
    responses((status = 200, body = InboxPage)))]
async fn inbox(
    State(node): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<InboxQuery>,
) -> Result<Json<InboxPage>, ApiError> {
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(60));
    let items = node
        .inbox(&p, q.after, q.limit.unwrap_or(100), wait)
        .await?;
    Ok(Json(inbox_page(items, q.after)))
}

/// Acknowledge a message: it leaves your inbox and is never handed out again.
#[utoipa::path(post, path = "/v1/inbox/{message_id}/ack", tag = "inbox",
    params(("message_id" = String, Path, description = "urn:uuid:…")),
    security(("bearer" = [])),
    responses((status = 200, body = AckBody), (status = 404, description = "Not in your inbox", body = Problem, content_type = "application/problem+json")))]
async fn ack(
    State(node): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> Result<Json<AckBody>, ApiError> {
    use store::AckOutcome::*;
    match node.ack(&p, &id).await? {
        Acknowledged => Ok(Json(AckBody {
            message_id: id,
            acknowledged_now: true,
        })),
        AlreadyAcknowledged => Ok(Json(AckBody {
            message_id: id,
            acknowledged_now: false,
        })),
        NotInInbox => Err(NodeError::NotFound.into()),
    }
}

// ---------------------------------------------------------------- SOAP

/// Send a complete Decision No. 5 envelope (SOAP 1.2). `wsa:ReplyTo` must be your address;
/// `int:Integration` must be absent (the node writes it). Answers with an RCV signal after the
/// durable commit, or a SOAP Fault.
#[utoipa::path(post, path = "/v1/soap", tag = "messages",
    request_body(content = String, content_type = "application/soap+xml"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "RCV signal", content_type = "application/soap+xml", body = String),
        (status = 400, description = "SOAP Fault (sender)", content_type = "application/soap+xml", body = String),
        (status = 403, description = "SOAP Fault: ReplyTo is not you", content_type = "application/soap+xml", body = String),
        (status = 500, description = "SOAP Fault (receiver); retry", content_type = "application/soap+xml", body = String),
    ))]
async fn soap(State(node): State<AppState>, Caller(p): Caller, body: Bytes) -> Response {
    let soap_type = [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")];
    match node.submit_envelope(&p, &body).await {
        Ok((receipt, rcv)) => {
            let mut r = (StatusCode::OK, soap_type, rcv.to_xml()).into_response();
            if let Ok(v) = HeaderValue::from_str(&receipt.track_id) {
                r.headers_mut().insert(TRACK_ID_HEADER, v);
            }
            r
        }
        Err((fault, err)) => {
            let status = StatusCode::from_u16(fault_status(&err))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, soap_type, fault.to_xml()).into_response()
        }
    }
}

// ---------------------------------------------------------------- operations

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    pub segment: String,
    pub outbox_pending: i64,
    pub inbox_unacknowledged: i64,
}

/// Liveness and store reachability.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(node): State<AppState>) -> Response {
    match node.store().queue_depth().await {
        Ok((o, i)) => Json(Health {
            status: "ok".into(),
            segment: node.segment().to_string(),
            outbox_pending: o,
            inbox_unacknowledged: i,
        })
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: format!("store unavailable: {e}"),
                segment: node.segment().to_string(),
                outbox_pending: -1,
                inbox_unacknowledged: -1,
            }),
        )
            .into_response(),
    }
}

async fn metrics(State(node): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.render_metrics().await,
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json()).into_response()
}

// ---------------------------------------------------------------- reference data

/// A resource or crosswalk this node holds.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NsiEntry {
    pub code: String,
    /// `directory`, `classifier` or `crosswalk`.
    pub kind: String,
    pub version: i64,
    pub sha256: String,
    /// Items or mappings.
    pub size: usize,
    pub names: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NsiCatalogue {
    pub resources: Vec<NsiEntry>,
    /// How this node's copy stands against its publisher.
    pub sync: crate::reference::SyncStatus,
}

/// One item as of a date, with its path to the root of the hierarchy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NsiItem {
    pub resource: String,
    pub version: i64,
    pub as_of: String,
    pub code: String,
    pub names: std::collections::BTreeMap<String, String>,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// Codes from this item up to the root.
    pub path: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AsOf {
    /// The date to answer for (YYYY-MM-DD); today if absent.
    pub as_of: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// Words in any language; Kazakh, Belarusian and Kyrgyz letters match their Russian neighbours.
    pub q: String,
    pub as_of: Option<String>,
    pub limit: Option<usize>,
}

/// The date asked for, or today on the node's clock.
fn as_of(s: &Option<String>, today: time::Date) -> Result<time::Date, ApiError> {
    match s {
        Some(s) => nsi::model::parse_date(s)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-date", e, None)),
        None => Ok(today),
    }
}

fn nsi_item(r: &nsi::ResourceIndex, it: &nsi::Item, on: time::Date) -> NsiItem {
    NsiItem {
        resource: r.header.code.clone(),
        version: r.version,
        as_of: nsi::model::format_date(on),
        code: it.code.clone(),
        names: it.names.clone(),
        attributes: it.attributes.clone(),
        valid_from: it.valid_from.map(nsi::model::format_date),
        valid_to: it.valid_to.map(nsi::model::format_date),
        path: r
            .path(&it.code, on)
            .iter()
            .map(|i| i.code.clone())
            .collect(),
    }
}

/// The reference data this node holds, and how old its copy is.
#[utoipa::path(get, path = "/v1/nsi", tag = "reference data",
    responses((status = 200, body = NsiCatalogue)))]
async fn nsi_list(State(node): State<AppState>, _reader: NsiReader) -> Response {
    let idx = node.reference();
    let mut resources: Vec<NsiEntry> = idx
        .resources()
        .map(|r| NsiEntry {
            code: r.header.code.clone(),
            kind: r.header.kind.as_str().into(),
            version: r.version,
            sha256: r.sha256.clone(),
            size: r.items().len(),
            names: r.header.names.clone(),
        })
        .collect();
    resources.extend(idx.crosswalks().map(|c| NsiEntry {
        code: c.header.code.clone(),
        kind: "crosswalk".into(),
        version: c.version,
        sha256: c.sha256.clone(),
        size: c.len(),
        names: c.header.names.clone(),
    }));
    Json(NsiCatalogue {
        resources,
        sync: node.sync_status(),
    })
    .into_response()
}

/// One code of a resource as of a date.
#[utoipa::path(get, path = "/v1/nsi/{resource}/items/{code}", tag = "reference data",
    params(("resource" = String, Path), ("code" = String, Path), AsOf),
    responses((status = 200, body = NsiItem),
        (status = 404, description = "No such resource, or the code is not valid on that date", body = Problem, content_type = "application/problem+json")))]
async fn nsi_lookup(
    State(node): State<AppState>,
    _reader: NsiReader,
    Path((resource, code)): Path<(String, String)>,
    Query(q): Query<AsOf>,
) -> Result<Json<NsiItem>, ApiError> {
    let on = as_of(&q.as_of, node.clock()().date())?;
    let idx = node.reference();
    let not_found = |d: String| ApiError::new(StatusCode::NOT_FOUND, "not-found", d, None);
    let r = idx
        .resource(&resource)
        .ok_or_else(|| not_found(format!("no resource {resource}")))?;
    let it = r.lookup(&code, on).ok_or_else(|| {
        not_found(format!(
            "{code} is not a code of {resource} valid on {}",
            nsi::model::format_date(on)
        ))
    })?;
    Ok(Json(nsi_item(r, it, on)))
}

/// Codes whose names match, best first.
#[utoipa::path(get, path = "/v1/nsi/{resource}/search", tag = "reference data",
    params(("resource" = String, Path), SearchQuery),
    responses((status = 200, body = Vec<NsiItem>),
        (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json")))]
async fn nsi_search(
    State(node): State<AppState>,
    _reader: NsiReader,
    Path(resource): Path<String>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Vec<NsiItem>>, ApiError> {
    let on = as_of(&q.as_of, node.clock()().date())?;
    let idx = node.reference();
    let r = idx.resource(&resource).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no resource {resource}"),
            None,
        )
    })?;
    let found = r.search(
        &q.q,
        q.as_of.as_ref().map(|_| on),
        q.limit.unwrap_or(10).min(100),
    );
    Ok(Json(
        found
            .into_iter()
            .map(|(_, it)| nsi_item(r, it, on))
            .collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NsiVersionInfo {
    pub version: i64,
    pub sha256: String,
    pub published_at: String,
}

fn nsi_store_error(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "reference data read failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the node could not read its reference data".into(),
        None,
    )
}

/// Every version of a resource or crosswalk held here, oldest first.
#[utoipa::path(get, path = "/v1/nsi/{resource}/versions", tag = "reference data",
    params(("resource" = String, Path)),
    responses((status = 200, body = Vec<NsiVersionInfo>),
        (status = 404, description = "Nothing published under this code", body = Problem, content_type = "application/problem+json")))]
async fn nsi_versions(
    State(node): State<AppState>,
    _reader: NsiReader,
    Path(resource): Path<String>,
) -> Result<Json<Vec<NsiVersionInfo>>, ApiError> {
    let v = node
        .store()
        .nsi_versions(&resource)
        .await
        .map_err(nsi_store_error)?;
    if v.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("nothing is published as {resource}"),
            None,
        ));
    }
    Ok(Json(
        v.into_iter()
            .map(|(version, sha256, at)| NsiVersionInfo {
                version,
                sha256,
                published_at: from_micros(at).format(&Rfc3339).unwrap_or_default(),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExportQuery {
    /// `json` (default), `csv` or `xml`.
    pub format: Option<String>,
}

/// One version, exported as JSON, CSV or XML.
#[utoipa::path(get, path = "/v1/nsi/{resource}/versions/{version}", tag = "reference data",
    params(("resource" = String, Path), ("version" = i64, Path), ExportQuery),
    responses((status = 200, description = "The version in the format asked for, with an `ETag` (versions never change)"),
        (status = 304, description = "Not modified: `If-None-Match` named this version's ETag"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json")))]
async fn nsi_export(
    State(node): State<AppState>,
    _reader: NsiReader,
    Path((resource, version)): Path<(String, i64)>,
    Query(q): Query<ExportQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let fmt = nsi::format::Format::parse(q.format.as_deref().unwrap_or("json"))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid-format", e, None))?;
    let (ct, ext) = match fmt {
        nsi::format::Format::Json => ("application/json", "json"),
        nsi::format::Format::Csv => ("text/csv; charset=utf-8", "csv"),
        nsi::format::Format::Xml => ("application/xml", "xml"),
    };
    let sha = version_hash(&node, &resource, version).await?;
    let etag = format!("\"{sha}.{ext}\"");
    if let Some(r) = not_modified(&headers, &etag) {
        return Ok(r);
    }
    let key = format!("export {etag}");
    let body = match node.read_cache().answer(&key) {
        Some(b) => b,
        None => {
            let content = decoded(&node, &resource, version, &sha).await?;
            let b = Bytes::from(
                node.heavy()
                    .run(move || nsi::format::write(&content, fmt))
                    .await?,
            );
            node.read_cache().keep_answer(key, b.clone());
            b
        }
    };
    Ok(cacheable(&etag, [(header::CONTENT_TYPE, ct)], body))
}

/// The hash of a stored version (an immutable fact, so the ETag of all made from it), or 404.
async fn version_hash(node: &Node, resource: &str, version: i64) -> Result<String, ApiError> {
    node.store()
        .nsi_versions(resource)
        .await
        .map_err(nsi_store_error)?
        .into_iter()
        .find(|(v, _, _)| *v == version)
        .map(|(_, sha, _)| sha)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{resource} has no version {version}"),
                None,
            )
        })
}

/// A stored version, decoded and hash-checked in the heavy pool, or from the cache.
async fn decoded(
    node: &Node,
    resource: &str,
    version: i64,
    sha: &str,
) -> Result<Arc<nsi::model::Content>, ApiError> {
    if let Some(c) = node.read_cache().decoded(sha) {
        return Ok(c);
    }
    let v = stored_version(node, resource, version).await?;
    let c = node
        .heavy()
        .run(move || crate::reference::decode(&v))
        .await?
        .map_err(nsi_store_error)?;
    let c = Arc::new(c);
    node.read_cache().keep_decoded(sha, c.clone());
    Ok(c)
}

/// 304 when the client already holds what `etag` names.
fn not_modified(headers: &axum::http::HeaderMap, etag: &str) -> Option<Response> {
    let held = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    let matches = held
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    matches.then(|| {
        let mut r = cacheable(etag, [], Bytes::new());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    })
}

/// An answer made from immutable versions: its ETag, and leave to keep it.
fn cacheable<const N: usize>(
    etag: &str,
    headers: [(header::HeaderName, &'static str); N],
    body: Bytes,
) -> Response {
    let mut r = (headers, body).into_response();
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400"),
    );
    r
}

/// A stored version of a resource, or 404.
async fn stored_version(
    node: &Node,
    resource: &str,
    version: i64,
) -> Result<store::NsiVersion, ApiError> {
    node.store()
        .nsi_version(resource, Some(version))
        .await
        .map_err(nsi_store_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                format!("{resource} has no version {version}"),
                None,
            )
        })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DiffQuery {
    pub from: i64,
    pub to: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NsiDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub header_changed: bool,
}

/// What changed between two versions.
#[utoipa::path(get, path = "/v1/nsi/{resource}/diff", tag = "reference data",
    params(("resource" = String, Path), DiffQuery),
    responses((status = 200, body = NsiDiff, description = "What changed, with an `ETag`"),
        (status = 304, description = "Not modified: `If-None-Match` named this diff's ETag"),
        (status = 404, description = "No such version", body = Problem, content_type = "application/problem+json")))]
async fn nsi_diff(
    State(node): State<AppState>,
    _reader: NsiReader,
    Path(resource): Path<String>,
    Query(q): Query<DiffQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let (from, to) = (
        version_hash(&node, &resource, q.from).await?,
        version_hash(&node, &resource, q.to).await?,
    );
    let etag = format!("\"diff.{from}.{to}\"");
    if let Some(r) = not_modified(&headers, &etag) {
        return Ok(r);
    }
    let key = format!("diff {etag}");
    let body = match node.read_cache().answer(&key) {
        Some(b) => b,
        None => {
            let a = decoded(&node, &resource, q.from, &from).await?;
            let b = decoded(&node, &resource, q.to, &to).await?;
            let json = node
                .heavy()
                .run(move || {
                    let d = nsi::diff::diff(Some(&a), &b);
                    serde_json::to_vec(&NsiDiff {
                        added: d.added,
                        removed: d.removed,
                        changed: d.changed,
                        header_changed: d.header_changed,
                    })
                })
                .await?
                .map_err(nsi_store_error)?;
            let json = Bytes::from(json);
            node.read_cache().keep_answer(key, json.clone());
            json
        }
    };
    Ok(cacheable(
        &etag,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    ))
}
