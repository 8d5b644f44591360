//! P.TS.01, the unified registry of conformity documents, as base implementation components for
//! states without their own IS: the Commission's registry keeper and a national submitter.
//! Both are information systems on the adapter boundary like any other (`adapter::Adapter`,
//! in-process or over HTTP); the transaction engine of the `process` crate tells them which
//! signals and answers are due, and the registry keeper validates every document in full,
//! including the rules that need its registry, which it keeps in a store of its own
//! ([`registry::Registry`], on the node's engine).

pub mod registry;
pub mod sample;

use std::sync::Arc;
use std::time::Duration;

use adapter::{Adapter, AdapterError, Clock, InboxMessage, Submission, Ttp};
use envelope::{
    Address, Body, Envelope, ErrorCode, MessageKind, Origin, ParseOptions, Signal, SignalError,
    SignalKind, UrnUuid,
};
use process::package::OnInvalid;
use process::{Action, Event, Outcome, Package, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use registry::{Registry, RegistryRecord};

pub const KEEPER: &str = "EAEU://EEC/CP/P.TS.01/P.ACT.001";
/// The Commission's R.TR.TS.01.001 and the common objects it is made of.
const NS_DOC: &str = "urn:EEC:R:TR:TS:01:ConformityDocsRegistryDetails:v1.0.1";
const NS_CCDO: &str = "urn:EEC:M:ComplexDataObjects:v0.4.5";
const NS_CSDO: &str = "urn:EEC:M:SimpleDataObjects:v0.4.5";
const NS_TRCDO: &str = "urn:EEC:M:TR:ComplexDataObjects:v1.0.3";
const NS_TRSDO: &str = "urn:EEC:M:TR:SimpleDataObjects:v1.0.3";
/// R.006 v1.0.7 (reconstructed: see the package's `xsd/ProcessingResult.xsd`).
const NS_PR: &str = "urn:EEC:R:ProcessingResultDetails:v1.0.7";
/// Our own query structures of P.TS.01 (code area XO).
const NS_Q: &str = "urn:ortaq:R:XO:TS:01:ConformityDocQuery:v1.0.0";

#[derive(Debug, thiserror::Error)]
pub enum ConformityError {
    #[error("adapter API: {0}")]
    Api(#[from] AdapterError),
    #[error("registry: {0}")]
    Db(#[from] db::DbError),
    #[error("{0}")]
    Other(String),
}

fn other(e: impl std::fmt::Display) -> ConformityError {
    ConformityError::Other(e.to_string())
}

/// The text of the first element named `local` in namespace `ns`, anywhere in `xml`.
fn field(xml: &str, ns: &str, local: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.descendants()
        .find(|n| {
            n.is_element() && n.tag_name().name() == local && n.tag_name().namespace() == Some(ns)
        })
        .and_then(|n| n.text())
        .map(|t| t.trim().to_owned())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn stamp(now: OffsetDateTime) -> String {
    now.format(&Rfc3339).unwrap_or_default()
}

fn bare_uuid(u: &UrnUuid) -> String {
    u.to_string().trim_start_matches("urn:uuid:").to_owned()
}

/// At most `n` characters of `s` (the Union's text types are bounded in characters).
fn chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// The Union's `ccdo:EDocHeader` of a document this keeper writes.
fn edoc_header(
    message: &str,
    structure: &str,
    ref_id: Option<&str>,
    now: OffsetDateTime,
) -> String {
    format!(
        "<ccdo:EDocHeader><csdo:InfEnvelopeCode>{message}</csdo:InfEnvelopeCode><csdo:EDocCode>{structure}</csdo:EDocCode>\
<csdo:EDocId>{}</csdo:EDocId>{}<csdo:EDocDateTime>{}</csdo:EDocDateTime><csdo:LanguageCode>ru</csdo:LanguageCode></ccdo:EDocHeader>",
        bare_uuid(&UrnUuid::new_v4()),
        ref_id.map_or(String::new(), |r| format!(
            "<csdo:EDocRefId>{}</csdo:EDocRefId>",
            esc(r)
        )),
        stamp(now),
    )
}

/// R.006 result codes as public code uses them: 1 сведения отсутствуют, 2 сведения получены,
/// 3 сведения добавлены.
pub const RESULT_ADDED: &str = "3";
pub const RESULT_RECEIVED: &str = "2";

/// An R.006 processing result (P.TS.01.MSG.004) answering the document `ref_id`: code 3 with
/// `done` when there are no problems, else code 2 («received, not added») with one
/// `ccdo:EDocErrorDetails` per problem (the rule, its Russian text, the English text as the
/// detailed text, the element's path).
pub fn processing_result(
    ref_id: Option<&str>,
    diagnostics: &[edoc::Diagnostic],
    now: OffsetDateTime,
    done: &str,
) -> String {
    let (code, text) = if diagnostics.is_empty() {
        (RESULT_ADDED, done.to_owned())
    } else {
        (
            RESULT_RECEIVED,
            format!(
                "Сведения получены, но не приняты: замечаний {}",
                diagnostics.len()
            ),
        )
    };
    let mut out = format!(
        "<pr:ProcessingResultDetails xmlns:pr=\"{NS_PR}\" xmlns:ccdo=\"{NS_CCDO}\" xmlns:csdo=\"{NS_CSDO}\">{}\
<csdo:EventDateTime>{}</csdo:EventDateTime><csdo:ProcessingResultV2Code>{code}</csdo:ProcessingResultV2Code>\
<csdo:DescriptionText>{}</csdo:DescriptionText>",
        edoc_header("P.TS.01.MSG.004", "R.006", ref_id, now),
        stamp(now),
        esc(chars(&text, 4000)),
    );
    for d in diagnostics {
        out.push_str(&format!(
            "<ccdo:EDocErrorDetails><csdo:EDocErrorCode>{}</csdo:EDocErrorCode><csdo:EDocErrorText>{}</csdo:EDocErrorText>\
<csdo:EDocDetailedErrorText>{}</csdo:EDocDetailedErrorText><csdo:EDocElementText>{}</csdo:EDocElementText></ccdo:EDocErrorDetails>",
            esc(chars(&d.rule, 30)),
            esc(chars(&d.ru, 1000)),
            esc(chars(&d.en, 4000)),
            esc(chars(&d.xpath, 1000)),
        ));
    }
    out.push_str("</pr:ProcessingResultDetails>");
    out
}

/// One record of an R.TR.TS.01.001 message: its registry entry and the record as a message of
/// its own (the message's start tag with its namespace declarations, its header, this record
/// and the end tag, cut from the text as it came, so nothing is re-serialised).
pub fn records(xml: &str) -> Vec<(RegistryRecord, String)> {
    let Ok(doc) = roxmltree::Document::parse(xml) else {
        return Vec::new();
    };
    let root = doc.root_element();
    let is = |n: &roxmltree::Node, ns: &str, local: &str| {
        n.is_element() && n.tag_name().name() == local && n.tag_name().namespace() == Some(ns)
    };
    let child = |n: &roxmltree::Node<'_, '_>, ns: &str, local: &str| -> String {
        n.children()
            .find(|c| is(c, ns, local))
            .and_then(|c| c.text())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let Some(header) = root.children().find(|c| is(c, NS_CCDO, "EDocHeader")) else {
        return Vec::new();
    };
    let last = root.last_element_child();
    let (Some(last), true) = (last, is(&root, NS_DOC, "ConformityDocsRegistryDetails")) else {
        return Vec::new();
    };
    let start = &xml[root.range().start..header.range().start];
    let end = &xml[last.range().end..root.range().end];
    let head = &xml[header.range()];
    root.children()
        .filter(|c| is(c, NS_TRCDO, "ConformityDocDetails"))
        .map(|r| {
            let status = r
                .children()
                .find(|c| is(c, NS_TRCDO, "DocStatusDetails"))
                .map(|s| child(&s, NS_TRSDO, "DocStatusCode"))
                .unwrap_or_default();
            // The names and codes people search by, wherever they sit in the record.
            let texts = |local: &str| -> Vec<String> {
                r.descendants()
                    .filter(|n| n.is_element() && n.tag_name().name() == local)
                    .filter_map(|n| n.text())
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .collect()
            };
            let applicant = r
                .children()
                .find(|c| is(c, NS_TRCDO, "ApplicantDetails"))
                .map(|a| child(&a, NS_CSDO, "BusinessEntityName"))
                .unwrap_or_default();
            let products = texts("ProductName");
            let doc_id = child(&r, NS_CSDO, "DocId");
            let kind = child(&r, NS_TRSDO, "ConformityDocKindName");
            let mut search = vec![doc_id.clone(), kind.clone()];
            search.extend(texts("BusinessEntityName"));
            search.extend(products.iter().cloned());
            search.extend(texts("CommodityCode"));
            search.extend(texts("ProductText"));
            (
                RegistryRecord {
                    doc_id,
                    country: child(&r, NS_CSDO, "UnifiedCountryCode"),
                    kind,
                    status,
                    submitted_by: String::new(),
                    updated_at: String::new(),
                    applicant,
                    products: products.join("; "),
                    start_date: child(&r, NS_CSDO, "DocStartDate"),
                    valid_until: child(&r, NS_CSDO, "DocValidityDate"),
                    search_text: search.join(" ").to_lowercase(),
                },
                format!("{start}{head}{}{end}", &xml[r.range()]),
            )
        })
        .collect()
}

/// What the keeper did with one message, for logs and the demo's transcript.
#[derive(Debug, Clone)]
pub struct Handled {
    pub message_id: String,
    pub from: String,
    pub message: String,
    pub summary: String,
}

/// The Commission's registry keeper (P.ACT.001 in P.TS.01).
pub struct RegistryKeeper<A> {
    client: A,
    package: Package,
    pool: edoc::Pool,
    registry: Arc<Registry>,
    nsi: Arc<dyn Fn() -> Arc<nsi::Index> + Send + Sync>,
    clock: Clock,
}

impl<A: Adapter + Ttp> RegistryKeeper<A> {
    /// `nsi` gives the current reference data (the keeper checks code lists as the node does).
    pub fn new(
        client: A,
        package: Package,
        registry: Arc<Registry>,
        nsi: Arc<dyn Fn() -> Arc<nsi::Index> + Send + Sync>,
        clock: Clock,
    ) -> Result<RegistryKeeper<A>, ConformityError> {
        let pool =
            edoc::Pool::start(vec![package.clone()], 1, edoc::Limits::default()).map_err(other)?;
        Ok(RegistryKeeper {
            client,
            package,
            pool,
            registry,
            nsi,
            clock,
        })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Takes messages from the inbox until `stop`; every one is answered and acknowledged.
    pub async fn run(
        self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        handled: Option<tokio::sync::mpsc::UnboundedSender<Handled>>,
    ) {
        let mut after = 0;
        while !*stop.borrow() {
            let page = tokio::select! {
                p = self.client.inbox(after, 50, 2) => p,
                _ = stop.changed() => return,
            };
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "registry keeper: inbox unavailable");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for m in page.messages {
                after = after.max(m.seq);
                match self.handle(&m.envelope, &m.from).await {
                    Ok(h) => {
                        // Acknowledged only once answered: a crash before this line gets
                        // the message again, and the engine repeats the same answers.
                        if let Err(e) = self.client.ack(&m.message_id).await {
                            tracing::warn!(error = %e, "registry keeper: ack failed");
                        }
                        if let (Some(tx), Some(h)) = (&handled, h) {
                            let _ = tx.send(h);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, message = %m.message_id, "registry keeper: not handled; retried");
                        after = m.seq - 1;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break;
                    }
                }
            }
        }
    }

    async fn handle(&self, xml: &str, from: &str) -> Result<Option<Handled>, ConformityError> {
        let env =
            envelope::parse(xml.as_bytes(), &ParseOptions::new(Origin::Platform)).map_err(other)?;
        if env.header.kind() != MessageKind::Application {
            // RCV/PRS/ERR for what the keeper sent: nothing to answer.
            return Ok(None);
        }
        let Body::Document(doc) = &env.body else {
            return Ok(None);
        };
        let me = env.header.to.clone().ok_or_else(|| other("no wsa:To"))?;
        let cp = env
            .header
            .cp_action()
            .ok_or_else(|| other("no action"))?
            .clone();
        let code = cp.message_code().unwrap_or_default().to_owned();
        let role = from.rsplit('/').next().unwrap_or_default().to_owned();
        let now = (self.clock)();
        let mut handled = Handled {
            message_id: env.header.message_id.to_string(),
            from: from.to_owned(),
            message: code.clone(),
            summary: String::new(),
        };
        let Some(def) = self.package.transaction(&cp.transaction) else {
            self.send_err(&env, &me, ErrorCode::UnexpectedMessage, &[], None)
                .await?;
            handled.summary = format!("ERR: transaction {} is not in P.TS.01", cp.transaction);
            return Ok(Some(handled));
        };
        let shape = process::engine::Shape {
            message: &def.message,
            responses: &def.responses,
            initiator: &def.initiator,
            responder: &def.responder,
        };
        let (mut t, actions) =
            Transaction::respond_to(def.pattern, def.timing(), &shape, &code, &role, now);
        // RCV is the platform's: the node answered it after its durable commit.
        let mut stopped = false;
        for a in &actions {
            if let Action::Err(c) = a {
                self.send_err(&env, &me, c.clone(), &[], None).await?;
                handled.summary = format!(
                    "ERR {}: {code} from role {role:?} is not expected here",
                    c.as_str()
                );
                stopped = true;
            }
        }
        if stopped {
            return Ok(Some(handled));
        }
        // Full validation, including the rules that need the registry.
        let report = {
            let pool = self.pool.clone();
            let job = edoc::service::Job {
                bytes: doc.clone().into_bytes(),
                process: cp.process.as_str().to_owned(),
                version: cp.version.clone(),
                message: code.clone(),
                ref_id: None,
                nsi: (self.nsi)(),
                common: Some(self.registry.clone()),
                now,
                reply: Box::new(|_| {}),
            };
            tokio::task::spawn_blocking(move || pool.validate_blocking(job))
                .await
                .map_err(other)?
                .ok_or_else(|| other("validator stopped"))?
        };
        let accepted = report.is_valid() || def.on_invalid == OnInvalid::ProcessingResult;
        for a in t.on(Event::Processed { accepted }, now) {
            match a {
                Action::Signal(SignalKind::Prs) => self.send_prs(&env, &me).await?,
                Action::Err(c) => {
                    self.send_err(&env, &me, c, &report.diagnostics, report.edoc_id.as_deref())
                        .await?;
                    handled.summary = format!(
                        "ERR Common:DataError, {} problems",
                        report.diagnostics.len()
                    );
                    return Ok(Some(handled));
                }
                _ => {}
            }
        }
        // A signed document: the trusted third party of this node judges its signature.
        let mut report = report;
        if doc.contains(dsig::DS) {
            // Without a trusted third party to ask, the signature cannot be judged: the
            // document is rejected with that reason rather than taken on trust.
            let (verdict, reasons) = match self.client.receipt(doc, None).await {
                Ok((receipt, _)) => ttp::read_receipt(&receipt),
                Err(e) => (
                    "unjudged".to_owned(),
                    vec![format!("no trusted third party could judge it: {e}")],
                ),
            };
            if verdict == "valid" {
                handled.summary = "signature valid per the TTP receipt; ".into();
            } else {
                report.diagnostics.push(edoc::Diagnostic {
                    rule: "TTP".into(),
                    xpath: "/*/ds:Signature".into(),
                    line: None,
                    ru: format!(
                        "Подпись не принята доверенной третьей стороной: {}",
                        reasons.join("; ")
                    ),
                    en: format!(
                        "The trusted third party did not accept the signature: {}",
                        reasons.join("; ")
                    ),
                });
            }
        }
        let ts = stamp(now);
        let (response, body) = match code.as_str() {
            "P.TS.01.MSG.001" if !report.is_valid() => {
                handled.summary.push_str(&format!(
                    "rejected: {} problems (R.006)",
                    report.diagnostics.len()
                ));
                (
                    "P.TS.01.MSG.004",
                    processing_result(report.edoc_id.as_deref(), &report.diagnostics, now, ""),
                )
            }
            "P.TS.01.MSG.001" => {
                // Every record of the message, in one write: all of them or none.
                let recs: Vec<(RegistryRecord, String)> = records(doc)
                    .into_iter()
                    .map(|(mut r, xml)| {
                        r.submitted_by = from.to_owned();
                        r.updated_at = ts.clone();
                        (r, xml)
                    })
                    .collect();
                self.registry.put(&recs, report.edoc_id.as_deref()).await?;
                let names: Vec<String> = recs
                    .iter()
                    .map(|(r, _)| {
                        format!(
                            "{} ({}, {}, status {})",
                            r.doc_id, r.kind, r.country, r.status
                        )
                    })
                    .collect();
                handled
                    .summary
                    .push_str(&format!("registered {}", names.join("; ")));
                (
                    "P.TS.01.MSG.004",
                    processing_result(report.edoc_id.as_deref(), &[], now, "Сведения добавлены"),
                )
            }
            "P.TS.01.MSG.002" => {
                if report.is_valid() {
                    let id = field(doc, NS_CSDO, "DocId").unwrap_or_default();
                    let status = field(doc, NS_TRSDO, "DocStatusCode").unwrap_or_default();
                    self.registry.set_status(&id, &status, &ts).await?;
                    handled.summary = format!("status of {id} is now {status}");
                } else {
                    handled.summary = format!(
                        "status change rejected: {} problems (R.006)",
                        report.diagnostics.len()
                    );
                }
                (
                    "P.TS.01.MSG.004",
                    processing_result(
                        report.edoc_id.as_deref(),
                        &report.diagnostics,
                        now,
                        "Статус документа изменён",
                    ),
                )
            }
            "P.TS.01.MSG.003" => {
                let id = field(doc, NS_CSDO, "DocId").unwrap_or_default();
                let found = self.registry.get(&id).await?;
                handled.summary = match &found {
                    Some((r, _)) => format!("query for {id}: found, {}", r.status),
                    None => format!("query for {id}: not found"),
                };
                let mut body = format!(
                    "<q:ConformityDocQueryResult xmlns:q=\"{NS_Q}\" xmlns:ccdo=\"{NS_CCDO}\" xmlns:csdo=\"{NS_CSDO}\" xmlns:trsdo=\"{NS_TRSDO}\">{}<q:Found>{}</q:Found>",
                    edoc_header(
                        "P.TS.01.MSG.005",
                        "R.XO.TS.01.003",
                        report.edoc_id.as_deref(),
                        now
                    ),
                    found.is_some()
                );
                if let Some((r, xml)) = &found {
                    body.push_str(&format!(
                        "<trsdo:DocStatusCode>{}</trsdo:DocStatusCode>{xml}",
                        esc(&r.status)
                    ));
                }
                body.push_str("</q:ConformityDocQueryResult>");
                ("P.TS.01.MSG.005", body)
            }
            _ => return Ok(Some(handled)),
        };
        for a in t.on(
            Event::Respond {
                code: response.into(),
            },
            now,
        ) {
            if let Action::Response(code) = a {
                self.send_response(&env, &me, &code, body.clone()).await?;
            }
        }
        if t.outcome() != &Outcome::Completed {
            tracing::warn!(outcome = ?t.outcome(), "registry keeper: transaction not completed");
        }
        Ok(Some(handled))
    }

    async fn send_prs(&self, env: &Envelope, me: &Address) -> Result<(), ConformityError> {
        let prs = Envelope::signal_for(
            &env.header,
            me.clone(),
            Signal::new(SignalKind::Prs, (self.clock)()),
        )
        .map_err(other)?;
        self.client.send_envelope(&prs.to_xml()).await?;
        Ok(())
    }

    async fn send_err(
        &self,
        env: &Envelope,
        me: &Address,
        code: ErrorCode,
        diagnostics: &[edoc::Diagnostic],
        edoc_id: Option<&str>,
    ) -> Result<(), ConformityError> {
        let mut errors: Vec<SignalError> = diagnostics
            .iter()
            .map(|d| SignalError {
                code: code.clone(),
                description: format!("[{}] {}", d.rule, d.ru),
                details: Some(d.signal_details(edoc_id)),
            })
            .collect();
        if errors.is_empty() {
            errors.push(SignalError {
                code,
                description: "Сообщение не ожидается в этой транзакции или от этой роли".into(),
                details: Some(
                    "The message is not expected in this transaction or from this role".into(),
                ),
            });
        }
        let err =
            Envelope::signal_for(&env.header, me.clone(), Signal::err((self.clock)(), errors))
                .map_err(other)?;
        self.client.send_envelope(&err.to_xml()).await?;
        Ok(())
    }

    async fn send_response(
        &self,
        env: &Envelope,
        me: &Address,
        code: &str,
        body: String,
    ) -> Result<(), ConformityError> {
        let cp = env.header.cp_action().ok_or_else(|| other("no action"))?;
        let to = env.sender().ok_or_else(|| other("no sender"))?;
        let out = Submission {
            to: to.to_string(),
            process: cp.process.to_string(),
            version: cp.version.clone(),
            procedure: cp.procedure.clone(),
            transaction: cp.transaction.clone(),
            message: code.to_owned(),
            body,
            // Derived, so a repeat after a crash is a duplicate, not a second answer.
            message_id: Some(
                UrnUuid::derived(&[
                    "keeper-response",
                    me.as_str(),
                    &env.header.message_id.to_string(),
                ])
                .to_string(),
            ),
            conversation_id: env.header.conversation_id.map(|c| c.to_string()),
            procedure_id: env.header.procedure_id.map(|c| c.to_string()),
            relates_to: Some(env.header.message_id.to_string()),
        };
        self.client.send(&out).await?;
        Ok(())
    }
}

/// How a submission ended, as the national IS sees it.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub message_id: String,
    pub outcome: Outcome,
    /// PRS arrived: the keeper took the document into processing.
    pub processing: bool,
    /// The response document (R.006 or a query result), when one came.
    pub response: Option<String>,
    /// ERR entries, when the document was refused.
    pub errors: Vec<SignalError>,
    /// Every message taken from the inbox for this submission.
    pub received: Vec<String>,
}

/// A national submitter (P.TS.01.ACT.002 or ACT.003): sends documents to the keeper and follows
/// each transaction through the engine until it completes or fails.
pub struct Submitter<A> {
    client: A,
    package: Package,
    role: String,
    clock: Clock,
}

impl<A: Adapter> Submitter<A> {
    pub fn new(client: A, package: Package, own_address: &str, clock: Clock) -> Submitter<A> {
        Submitter {
            client,
            package,
            clock,
            role: own_address
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// Sends `body` as message `code` to the keeper and waits (up to `wait`) for the
    /// transaction to end.
    pub async fn submit(
        &self,
        code: &str,
        body: String,
        wait: Duration,
    ) -> Result<Submitted, ConformityError> {
        let def = self
            .package
            .transaction_of(code)
            .filter(|t| t.message == code)
            .ok_or_else(|| other(format!("{code} starts no transaction of P.TS.01")))?;
        if def.initiator != self.role {
            return Err(other(format!(
                "role {} does not start {}",
                self.role, def.code
            )));
        }
        let out = Submission {
            to: KEEPER.into(),
            process: self.package.process.code.clone(),
            version: self.package.process.version.clone(),
            procedure: def.procedure.clone(),
            transaction: def.code.clone(),
            message: code.to_owned(),
            body,
            ..Default::default()
        };
        let receipt = self.client.send(&out).await?;
        let f = follow(&self.client, def, &receipt.message_id, wait, &self.clock).await?;
        Ok(Submitted {
            message_id: receipt.message_id,
            outcome: f.outcome,
            processing: f.prs_ms.is_some(),
            response: f.response.map(|(_, doc, _)| doc),
            errors: f.errors,
            received: f.received.into_iter().map(|m| m.message_id).collect(),
        })
    }
}

/// What came back for one transaction this side started, as the engine judged it.
pub struct Followed {
    pub outcome: Outcome,
    /// When PRS arrived, in ms after following began.
    pub prs_ms: Option<u64>,
    /// ERR entries.
    pub errors: Vec<SignalError>,
    /// The response: message code, document, ms after following began.
    pub response: Option<(String, String, u64)>,
    /// Every message taken (and acknowledged) from the inbox for this transaction.
    pub received: Vec<InboxMessage>,
}

/// Follows the transaction started by message `id` (sent by `client` as the initiator of
/// `def`) through the engine: the signals (the RCV the recipient's node sends when its IS takes
/// the message, PRS, ERR) and the response that relate to `id` are taken from the inbox and
/// acknowledged, until the engine ends the transaction or `wait` passes. The node's own
/// acceptance of the message is not the transaction's RCV.
pub async fn follow<A: Adapter>(
    client: &A,
    def: &process::package::TransactionDef,
    id: &str,
    wait: Duration,
    clock: &Clock,
) -> Result<Followed, AdapterError> {
    let shape = process::engine::Shape {
        message: &def.message,
        responses: &def.responses,
        initiator: &def.initiator,
        responder: &def.responder,
    };
    let mut t = Transaction::initiate(def.pattern, def.timing(), &shape, clock());
    let mut f = Followed {
        outcome: Outcome::Pending,
        prs_ms: None,
        errors: Vec::new(),
        response: None,
        received: Vec::new(),
    };
    let start = tokio::time::Instant::now();
    while t.outcome() == &Outcome::Pending && start.elapsed() < wait {
        let now = clock();
        let page = client.inbox(0, 100, 1).await?;
        for m in page.messages {
            let Ok(env) =
                envelope::parse(m.envelope.as_bytes(), &ParseOptions::new(Origin::Platform))
            else {
                continue;
            };
            if env
                .header
                .relates_to
                .as_ref()
                .map(|r| r.id.to_string())
                .as_deref()
                != Some(id)
            {
                continue; // another transaction's
            }
            let ms = start.elapsed().as_millis() as u64;
            let event = match (&env.header.kind(), &env.body) {
                (MessageKind::Signal(k), Body::Signal(s)) => {
                    match k {
                        SignalKind::Prs => f.prs_ms = Some(ms),
                        SignalKind::Err => f.errors.extend(s.errors.iter().cloned()),
                        SignalKind::Rcv => {}
                    }
                    Event::Signal(*k)
                }
                (MessageKind::Application, Body::Document(d)) => {
                    let code = env
                        .header
                        .cp_action()
                        .and_then(|a| a.message_code())
                        .unwrap_or_default()
                        .to_owned();
                    f.response = Some((code.clone(), d.clone(), ms));
                    Event::Message {
                        code,
                        role: m.from.rsplit('/').next().unwrap_or_default().to_owned(),
                    }
                }
                _ => continue,
            };
            t.on(event, now);
            client.ack(&m.message_id).await?;
            f.received.push(m);
        }
        t.on(Event::Tick, clock());
    }
    f.outcome = t.outcome().clone();
    Ok(f)
}

/// What a query result (P.TS.01.MSG.005) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryAnswer {
    pub found: bool,
    /// The document's DocStatusCode in the registry.
    pub status: Option<String>,
    /// The applicant's name, from the registered document.
    pub applicant: Option<String>,
}

/// Reads a query result (R.XO.TS.01.003).
pub fn read_query_result(xml: &str) -> Option<QueryAnswer> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(NS_Q) {
        return None;
    }
    let found = field(xml, NS_Q, "Found")? == "true";
    let applicant = doc
        .descendants()
        .find(|n| {
            n.tag_name().name() == "ApplicantDetails" && n.tag_name().namespace() == Some(NS_TRCDO)
        })
        .and_then(|a| {
            a.children()
                .find(|c| c.tag_name().name() == "BusinessEntityName")
                .and_then(|c| c.text())
                .map(str::to_owned)
        });
    Some(QueryAnswer {
        found,
        status: field(xml, NS_TRSDO, "DocStatusCode"),
        applicant,
    })
}

/// The result code (1, 2 or 3) and the problems (rule, English text) of an R.006 document.
pub fn read_processing_result(xml: &str) -> Option<(String, Vec<(String, String)>)> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    if doc.root_element().tag_name().namespace() != Some(NS_PR) {
        return None;
    }
    let text = |n: &roxmltree::Node, local: &str| {
        n.children()
            .find(|c| c.tag_name().name() == local && c.tag_name().namespace() == Some(NS_CSDO))
            .and_then(|c| c.text())
            .unwrap_or_default()
            .to_owned()
    };
    let root = doc.root_element();
    let code = text(&root, "ProcessingResultV2Code");
    let diags = root
        .children()
        .filter(|n| {
            n.tag_name().name() == "EDocErrorDetails" && n.tag_name().namespace() == Some(NS_CCDO)
        })
        .map(|d| (text(&d, "EDocErrorCode"), text(&d, "EDocDetailedErrorText")))
        .collect();
    Some((code, diags))
}
