//! Conformance testing of a participant (seed plan item 5.1: when a process is commissioned,
//! when a participant joins, when a document edition changes). The runner plays the
//! counterpart role through the adapter API of a node, drives every transaction the tested role
//! answers through its normal and error paths, and writes a protocol: each check with pass or
//! fail and timings, and every envelope exchanged.
//!
//! What the process allows in time (e.g. an hour for a response) is longer than a test run
//! should wait, so the runner waits at most its own limit and says so in the check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use process::package::{OnInvalid, TransactionDef};
use process::{Outcome, Package};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use adapter::{Adapter, Clock, Submission};

/// Why a run could not be made (the checks themselves pass or fail in the protocol).
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("the package does not compile: {0}")]
    Package(#[from] edoc::CompileError),
    #[error("the runner's signing key: {0}")]
    Key(String),
    #[error("role {role} answers no transaction of {process}")]
    NothingToTest { role: String, process: String },
}

/// A participant the runner speaks as.
pub struct Tester<A> {
    pub address: String,
    pub client: A,
}

impl<A> Tester<A> {
    fn role(&self) -> &str {
        self.address.rsplit('/').next().unwrap_or_default()
    }
}

pub struct Suite<A> {
    pub package: Package,
    /// The role under test, e.g. `P.ACT.001`.
    pub role: String,
    /// The tested participant's address, e.g. `EAEU://EEC/CP/P.TS.01/P.ACT.001`.
    pub target: String,
    pub testers: Vec<Tester<A>>,
    /// The longest the runner waits for any one answer.
    pub timeout: Duration,
    /// Reference data for validating the answers (code lists).
    pub nsi: Arc<nsi::Index>,
    pub clock: Clock,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub transaction: String,
    /// `normal` or the error path's name.
    pub path: String,
    pub name: String,
    /// `pass`, `fail` or `skipped`.
    pub result: String,
    pub detail: String,
    pub millis: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exchanged {
    pub transaction: String,
    /// `sent` or `received`.
    pub direction: String,
    pub message_id: String,
    pub action: String,
    pub envelope: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Protocol {
    pub process: String,
    pub version: String,
    pub role: String,
    pub target: String,
    pub started: String,
    pub seconds: f64,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub checks: Vec<Check>,
    pub envelopes: Vec<Exchanged>,
}

impl Protocol {
    pub fn ok(&self) -> bool {
        self.failed == 0
    }

    /// The protocol as a readable report.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# Conformance protocol: {} {}, role {}\n\n- Target: `{}`\n- Started: {}, took {:.1} s\n- Result: **{}** — {} passed, {} failed, {} skipped\n\n| Transaction | Path | Check | Result | ms | Detail |\n|---|---|---|---|---|---|\n",
            self.process,
            self.version,
            self.role,
            self.target,
            self.started,
            self.seconds,
            if self.ok() {
                "conforms"
            } else {
                "does not conform"
            },
            self.passed,
            self.failed,
            self.skipped
        );
        for c in &self.checks {
            let mark = match c.result.as_str() {
                "pass" => "✅ pass",
                "fail" => "❌ fail",
                _ => "➖ skipped",
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                c.transaction,
                c.path,
                c.name,
                mark,
                c.millis,
                c.detail.replace('|', "\\|").replace('\n', " ")
            ));
        }
        s.push_str("\n## Envelopes exchanged\n\n");
        for e in &self.envelopes {
            s.push_str(&format!(
                "<details><summary>{} {} {} <code>{}</code></summary>\n\n```xml\n{}\n```\n</details>\n\n",
                e.transaction, e.direction, e.message_id, e.action, e.envelope
            ));
        }
        s
    }
}

/// What came back for one request.
#[derive(Default)]
struct Answers {
    prs: Option<u64>,
    err: Vec<(String, String)>,
    response: Option<(String, String, u64)>,
    outcome: Option<Outcome>,
}

struct Run<'a, A> {
    suite: &'a Suite<A>,
    pool: edoc::Pool,
    checks: Vec<Check>,
    envelopes: Vec<Exchanged>,
    /// Signs legally significant documents: a key and self-signed certificate made for this
    /// run only (a test key, never stored).
    signer: dsig::KeySigner,
}

/// A throwaway ECDSA P-256 signer for documents the runner must sign.
fn run_signer() -> Result<dsig::KeySigner, ConformanceError> {
    run_signer_inner().map_err(ConformanceError::Key)
}

fn run_signer_inner() -> Result<dsig::KeySigner, String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        "ortaq conformance runner (test key)",
    );
    let cert = p.self_signed(&key).map_err(|e| e.to_string())?;
    dsig::KeySigner::from_pkcs8(&key.serialize_der(), cert.der()).map_err(|e| e.to_string())
}

/// Runs every transaction the role answers and returns the protocol.
pub async fn run<A: Adapter>(suite: &Suite<A>) -> Result<Protocol, ConformanceError> {
    let started = (suite.clock)();
    let t0 = Instant::now();
    let pool = edoc::Pool::start(vec![suite.package.clone()], 1, edoc::Limits::default())?;
    let mut r = Run {
        suite,
        pool,
        checks: Vec::new(),
        envelopes: Vec::new(),
        signer: run_signer()?,
    };
    let mut tested = 0;
    for def in &suite.package.transactions {
        if def.responder != suite.role {
            if def.initiator == suite.role {
                r.check(
                    def,
                    "normal",
                    "the tested role starts this transaction",
                    Err::<(), _>(None),
                    0,
                );
            }
            continue;
        }
        tested += 1;
        let Some(tester) = suite.testers.iter().find(|t| t.role() == def.initiator) else {
            r.check(
                def,
                "normal",
                "a participant in the initiating role",
                Err::<(), _>(None),
                0,
            );
            continue;
        };
        r.transaction(def, tester).await;
    }
    if tested == 0 {
        return Err(ConformanceError::NothingToTest {
            role: suite.role.clone(),
            process: suite.package.process.code.clone(),
        });
    }
    let count = |x: &str| r.checks.iter().filter(|c| c.result == x).count();
    Ok(Protocol {
        process: suite.package.process.code.clone(),
        version: suite.package.process.version.clone(),
        role: suite.role.clone(),
        target: suite.target.clone(),
        started: started.format(&Rfc3339).unwrap_or_default(),
        seconds: t0.elapsed().as_secs_f64(),
        passed: count("pass"),
        failed: count("fail"),
        skipped: count("skipped"),
        checks: r.checks,
        envelopes: r.envelopes,
    })
}

/// The shipped sample of a message, with a fresh EDocId so each send is its own document.
fn sample(p: &Package, code: &str) -> Option<String> {
    let name = code.strip_prefix(&format!("{}.", p.process.code))?;
    let text = std::fs::read_to_string(p.dir.join("samples").join(format!("{name}.xml"))).ok()?;
    let body = text
        .split_once("?>")
        .map_or(text.as_str(), |(_, b)| b)
        .trim();
    let id = edoc::edoc_id(body)?;
    Some(body.replacen(&id, &uuid::Uuid::new_v4().to_string(), 1))
}

impl<A: Adapter> Run<'_, A> {
    /// Records a check: `Ok` passes, `Err(Some(why))` fails, `Err(None)` is skipped.
    fn check<T>(
        &mut self,
        def: &TransactionDef,
        path: &str,
        name: &str,
        r: Result<T, Option<String>>,
        millis: u64,
    ) -> Option<T> {
        let (result, detail, v) = match r {
            Ok(v) => ("pass", String::new(), Some(v)),
            Err(Some(why)) => ("fail", why, None),
            Err(None) => ("skipped", "not applicable here".to_owned(), None),
        };
        self.checks.push(Check {
            transaction: def.code.clone(),
            path: path.into(),
            name: name.into(),
            result: result.into(),
            detail,
            millis,
        });
        v
    }

    fn note(&mut self, detail: String) {
        if let Some(c) = self.checks.last_mut()
            && c.detail.is_empty()
        {
            c.detail = detail;
        }
    }

    async fn send(
        &mut self,
        def: &TransactionDef,
        tester: &Tester<A>,
        code: &str,
        body: String,
        conversation: Option<String>,
    ) -> Result<(String, Option<String>), String> {
        let p = &self.suite.package;
        // A legally significant message is signed as the last step, after any change a
        // path makes to the document, as a sender's IS would.
        let body = if p.message(code).is_some_and(|m| m.legally_significant) {
            dsig::sign_enveloped(&body, &self.signer).map_err(|e| e.to_string())?
        } else {
            body
        };
        let out = Submission {
            to: self.suite.target.clone(),
            process: p.process.code.clone(),
            version: p.process.version.clone(),
            procedure: def.procedure.clone(),
            transaction: def.code.clone(),
            message: code.to_owned(),
            body,
            conversation_id: conversation,
            ..Default::default()
        };
        let receipt = tester.client.send(&out).await.map_err(|e| e.to_string())?;
        if let Ok(bytes) = tester.client.envelope(&receipt.message_id).await {
            self.envelopes.push(Exchanged {
                transaction: def.code.clone(),
                direction: "sent".into(),
                message_id: receipt.message_id.clone(),
                action: format!("{code} to {}", self.suite.target),
                envelope: bytes,
            });
        }
        Ok((receipt.message_id, receipt.conversation_id))
    }

    /// Collects the signals and the response to `id` until the engine ends the transaction or
    /// the runner's limit passes; what was received goes into the protocol.
    async fn answers(&mut self, def: &TransactionDef, tester: &Tester<A>, id: &str) -> Answers {
        let Ok(f) = conformity::follow(
            &tester.client,
            def,
            id,
            self.suite.timeout,
            &self.suite.clock,
        )
        .await
        else {
            return Answers {
                outcome: Some(Outcome::Pending),
                ..Answers::default()
            };
        };
        for m in &f.received {
            self.envelopes.push(Exchanged {
                transaction: def.code.clone(),
                direction: "received".into(),
                message_id: m.message_id.clone(),
                action: m.action.clone(),
                envelope: m.envelope.clone(),
            });
        }
        Answers {
            prs: f.prs_ms,
            err: f
                .errors
                .iter()
                .map(|e| {
                    (
                        e.code.as_str().to_owned(),
                        e.details.clone().unwrap_or(e.description.clone()),
                    )
                })
                .collect(),
            response: f.response,
            outcome: Some(f.outcome),
        }
    }

    async fn validate(&self, code: &str, doc: &str, ref_id: Option<String>) -> edoc::Report {
        let pool = self.pool.clone();
        let job = edoc::service::Job {
            bytes: doc.as_bytes().to_vec(),
            process: self.suite.package.process.code.clone(),
            version: self.suite.package.process.version.clone(),
            message: code.to_owned(),
            ref_id,
            nsi: self.suite.nsi.clone(),
            common: None,
            now: (self.suite.clock)(),
            reply: Box::new(|_| {}),
        };
        tokio::task::spawn_blocking(move || pool.validate_blocking(job))
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn limit(&self, secs: Option<u64>) -> String {
        format!(
            "the process allows {}, the runner waits at most {} s",
            secs.map_or("no limit".into(), |s| format!("{s} s")),
            self.suite.timeout.as_secs()
        )
    }

    async fn transaction(&mut self, def: &TransactionDef, tester: &Tester<A>) {
        let p = self.suite.package.clone();
        let Some(body) = sample(&p, &def.message) else {
            self.check(
                def,
                "normal",
                &format!("a sample of {} to send", def.message),
                Err::<(), _>(None),
                0,
            );
            return;
        };
        let ref_id = edoc::edoc_id(&body);

        // Normal path.
        let t = Instant::now();
        let sent = self
            .send(def, tester, &def.message, body.clone(), None)
            .await;
        let ms = t.elapsed().as_millis() as u64;
        let Some((id, conv)) = self.check(
            def,
            "normal",
            &format!("{} accepted by the tester's node", def.message),
            sent.map_err(Some),
            ms,
        ) else {
            return;
        };
        let a = self.answers(def, tester, &id).await;
        if def.processing_secs.is_some() {
            let r = a
                .prs
                .ok_or_else(|| Some(format!("no PRS; {}", self.limit(def.processing_secs))));
            self.check(
                def,
                "normal",
                "PRS within the processing time",
                r,
                a.prs.unwrap_or(0),
            );
        }
        if !a.err.is_empty() {
            let errs: Vec<String> = a.err.iter().map(|(c, d)| format!("{c}: {d}")).collect();
            self.check(
                def,
                "normal",
                "no ERR for a valid document",
                Err::<(), _>(Some(errs.join("; "))),
                0,
            );
        }
        if def.pattern.has_response() {
            let r = match &a.response {
                Some((code, _, _)) if def.responses.contains(code) => Ok(()),
                Some((code, _, _)) => Err(Some(format!("{code} is not among {:?}", def.responses))),
                None => Err(Some(format!(
                    "no response; {}",
                    self.limit(def.response_secs)
                ))),
            };
            let ms = a.response.as_ref().map_or(0, |r| r.2);
            self.check(
                def,
                "normal",
                "a response of the transaction within the response time",
                r,
                ms,
            );
            if let Some((code, doc, _)) = &a.response {
                let report = self.validate(code, doc, ref_id.clone()).await;
                let r = if report.is_valid() {
                    Ok(())
                } else {
                    Err(Some(
                        report
                            .diagnostics
                            .iter()
                            .map(|d| format!("[{}] {} {}", d.rule, d.xpath, d.en))
                            .collect::<Vec<_>>()
                            .join("; "),
                    ))
                };
                self.check(
                    def,
                    "normal",
                    "the response is valid (XSD, header with EDocRefId, filling rules)",
                    r,
                    0,
                );
            }
        }
        let r = match &a.outcome {
            Some(Outcome::Completed) => Ok(()),
            Some(Outcome::Pending) | None => Err(Some(format!(
                "still pending when the runner stopped waiting ({} s)",
                self.suite.timeout.as_secs()
            ))),
            Some(other) => Err(Some(format!("{other:?}"))),
        };
        self.check(
            def,
            "normal",
            "the transaction completes as its pattern says",
            r,
            0,
        );

        // A retry: new MessageID, same ConversationID; the same answer comes again.
        if def.pattern.has_response() && def.retries > 0 {
            let t = Instant::now();
            if let Ok((id2, _)) = self
                .send(def, tester, &def.message, body.clone(), conv.clone())
                .await
            {
                let b = self.answers(def, tester, &id2).await;
                let r = match (&a.response, &b.response) {
                    (_, Some((c, _, _))) if def.responses.contains(c) => Ok(()),
                    _ => Err(Some(format!(
                        "no response to the retry; {}",
                        self.limit(def.response_secs)
                    ))),
                };
                self.check(
                    def,
                    "retry",
                    "a retry (new MessageID, same ConversationID) is answered",
                    r,
                    t.elapsed().as_millis() as u64,
                );
            }
        }

        // A message the transaction does not start with: ERR Common:UnexpectedMessage.
        let unexpected = def
            .responses
            .iter()
            .find_map(|c| sample(&p, c).map(|b| (c.clone(), b)));
        match unexpected {
            Some((code, b)) => {
                let t = Instant::now();
                if let Ok((id3, _)) = self.send(def, tester, &code, b, None).await {
                    let c = self.answers(def, tester, &id3).await;
                    let r = if c.err.iter().any(|(k, _)| k == "Common:UnexpectedMessage") {
                        Ok(())
                    } else if c.err.is_empty() {
                        Err(Some(format!(
                            "no ERR for {code} sent as the first message; {}",
                            self.limit(def.response_secs)
                        )))
                    } else {
                        Err(Some(format!(
                            "ERR with {:?}, not Common:UnexpectedMessage",
                            c.err
                        )))
                    };
                    self.check(
                        def,
                        "unexpected message",
                        &format!("{code} out of order is answered ERR Common:UnexpectedMessage"),
                        r,
                        t.elapsed().as_millis() as u64,
                    );
                }
            }
            None => {
                self.check(
                    def,
                    "unexpected message",
                    "a sample of a response message to send out of order",
                    Err::<(), _>(None),
                    0,
                );
            }
        }

        // An invalid document: ERR Common:DataError, or a processing result listing the
        // problems, as the process says.
        let wrong = body.replacen("<csdo:EDocCode>", "<csdo:EDocCode>X", 1);
        let t = Instant::now();
        if let Ok((id4, _)) = self.send(def, tester, &def.message, wrong, None).await {
            let d = self.answers(def, tester, &id4).await;
            let data_err = d.err.iter().any(|(k, _)| k == "Common:DataError");
            let rejected = d
                .response
                .as_ref()
                .is_some_and(|(_, doc, _)| not_added(doc));
            let r = match def.on_invalid {
                OnInvalid::ErrorSignal if data_err => Ok(()),
                OnInvalid::ProcessingResult if rejected || data_err => Ok(()),
                OnInvalid::ErrorSignal => {
                    Err(Some(format!("no ERR Common:DataError; got {:?}", d.err)))
                }
                OnInvalid::ProcessingResult => Err(Some(
                    "no processing result refusing it (R.006 code other than 3) and no ERR".into(),
                )),
            };
            self.check(
                def,
                "invalid document",
                "a document with a wrong EDocCode is refused as the process says",
                r,
                t.elapsed().as_millis() as u64,
            );
            if data_err {
                let first = d.err.first().map(|e| e.1.clone()).unwrap_or_default();
                self.note(first);
            }
        }
    }
}

/// Does an R.006 processing result say the document was not taken: a result code other than 3
/// («сведения добавлены»), or problems listed?
fn not_added(doc: &str) -> bool {
    conformity::read_processing_result(doc)
        .is_some_and(|(code, problems)| code != conformity::RESULT_ADDED || !problems.is_empty())
}
