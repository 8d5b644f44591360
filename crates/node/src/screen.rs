//! Validation of e-documents addressed to this node's participants, before they are delivered:
//! an invalid document is kept (as evidence, state `failed`) but never reaches the IS, and its
//! sender gets an ERR signal with `Common:DataError` and every diagnostic.

use envelope::{Body, Envelope, MessageKind, Origin, ParseOptions, Signal, SignalError, UrnUuid};
use process::package::OnInvalid;
use store::{Accepted, NewMessage, Route, StoreError};

use crate::federation::derived_id;
use crate::{Node, micros};

/// An ERR lists at most this many diagnostics; the rest are counted in the last entry.
const MAX_ERRORS: usize = 200;

impl Node {
    /// Stores an accepted message, screening its document first when it is addressed to a
    /// participant of this node in a transaction of a loaded package.
    pub(crate) async fn store_screened(
        &self,
        mut m: NewMessage,
        env: &Envelope,
        route: &Route,
    ) -> Result<Accepted, StoreError> {
        let Some((code, report)) = self.screen(env, route).await else {
            return self.store.accept(m).await;
        };
        let notice = self.refusal_notice(env, code, &report);
        let dest = notice.as_ref().and_then(|n| match &n.route {
            Route::Outbox { destination } => Some(destination.clone()),
            Route::None => None,
        });
        let first = &report.diagnostics[0];
        let detail = format!(
            "document refused: {} problems; first [{}] {}: {}",
            report.diagnostics.len(),
            first.rule,
            first.xpath,
            first.en
        );
        tracing::info!(message = %env.header.message_id, problems = report.diagnostics.len(), "document refused by validation");
        // Kept, but queued for nobody.
        m.route = Route::None;
        m.expires_at = None;
        let out = self.store.accept_refused(m, detail, notice).await?;
        if out == Accepted::New {
            self.metrics.rejected.increment(1);
            if let Some(d) = dest {
                self.wake(&d);
            }
        }
        Ok(out)
    }

    /// Why this node must refuse a document (the ERR code and the diagnostics); None to
    /// deliver it.
    async fn screen(
        &self,
        env: &Envelope,
        route: &Route,
    ) -> Option<(envelope::ErrorCode, edoc::Report)> {
        let pool = self.validation.as_ref()?;
        if !matches!(route, Route::Outbox { destination } if destination == "local") {
            return None;
        }
        let Body::Document(doc) = &env.body else {
            return None;
        };
        let cp = env.header.cp_action()?;
        let msg = cp.message_code()?;
        if !pool.knows(msg) {
            return None;
        }
        // Only the loaded edition of a process is enforced; another version goes through.
        let pkg = self
            .packages
            .iter()
            .find(|p| p.process.code == cp.process.as_str() && p.process.version == cp.version)?;
        let trn = pkg.transaction(&cp.transaction);
        if let Some(why) = unexpected(env, &cp.transaction, msg, trn) {
            return Some((envelope::ErrorCode::UnexpectedMessage, why));
        }
        // The responding IS answers with a processing result instead (it has the process's
        // common resource, which some rules need).
        if trn.is_some_and(|t| t.on_invalid == OnInvalid::ProcessingResult) {
            return None;
        }
        let ref_id = match trn {
            Some(t) if t.message != msg => self.ref_edoc_id(env).await,
            _ => None,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = edoc::service::Job {
            bytes: doc.clone().into_bytes(),
            message: msg.to_owned(),
            ref_id,
            nsi: self.reference(),
            common: None,
            now: self.now(),
            reply: Box::new(move |r| {
                let _ = tx.send(r);
            }),
        };
        let report = if pool.submit(job) {
            rx.await.ok()
        } else {
            None
        };
        let Some(report) = report else {
            // Without a validator nothing can be said about the document; refusing it would
            // lose a possibly valid one, so it goes through and the operator is told.
            tracing::error!(message = %env.header.message_id, "validator threads are gone; document delivered unchecked");
            return None;
        };
        (!report.is_valid()).then_some((envelope::ErrorCode::DataError, report))
    }

    /// The `EDocId` of the document a response answers (the message in `wsa:RelatesTo`).
    async fn ref_edoc_id(&self, env: &Envelope) -> Option<String> {
        let id = env.header.relates_to.as_ref()?.id.to_string();
        let bytes = self.store.envelope(&id).await.ok()??;
        let orig = envelope::parse(&bytes, &ParseOptions::new(Origin::Any)).ok()?;
        match &orig.body {
            Body::Document(d) => edoc::edoc_id(d),
            _ => None,
        }
    }

    /// ERR from this node's gate to the sender, one entry per diagnostic.
    fn refusal_notice(
        &self,
        env: &Envelope,
        code: envelope::ErrorCode,
        report: &edoc::Report,
    ) -> Option<NewMessage> {
        let sender = env.sender()?.clone();
        if env.header.kind() != MessageKind::Application {
            return None;
        }
        let now = self.now();
        let mut errors: Vec<SignalError> = report
            .diagnostics
            .iter()
            .take(MAX_ERRORS)
            .map(|d| SignalError {
                code: code.clone(),
                description: format!("[{}] {}", d.rule, d.ru),
                details: Some(format!("[{}] {}", d.rule, d.en)),
                edoc_id: report.edoc_id.clone(),
                reference: Some(d.xpath.clone()),
            })
            .collect();
        if report.diagnostics.len() > MAX_ERRORS {
            errors.push(SignalError {
                code: code.clone(),
                description: format!("и ещё {} нарушений", report.diagnostics.len() - MAX_ERRORS),
                details: Some(format!(
                    "and {} more problems",
                    report.diagnostics.len() - MAX_ERRORS
                )),
                edoc_id: report.edoc_id.clone(),
                reference: None,
            });
        }
        let id = env.header.message_id.to_string();
        let mut sig = Signal::err(now, errors);
        sig.signal_id = derived_id(&["data-error-signal", self.segment.as_str(), &id]);
        let mut notice = Envelope::signal_for(&env.header, self.gate.clone(), sig).ok()?;
        notice.header.message_id = derived_id(&["data-error", self.segment.as_str(), &id]);
        let route = self.route(&sender).ok()?;
        let track = UrnUuid::new_v4();
        notice.stamp(track, now);
        let bytes = notice.to_xml().into_bytes();
        let mut m = self.new_message(&notice, bytes, track.to_string(), now, route.clone());
        m.direction = "notice".into();
        m.accept_time = micros(now);
        if matches!(&route, Route::Outbox { destination } if destination != "local") {
            m.signature = self.fed.as_ref()?.sign(&m.envelope).ok();
        }
        Some(m)
    }
}

/// A message the transaction does not have, or from a role that may not send it: the
/// transaction table of the process says who starts and who answers.
fn unexpected(
    env: &Envelope,
    transaction: &str,
    msg: &str,
    trn: Option<&process::package::TransactionDef>,
) -> Option<edoc::Report> {
    let why = |rule: &str, ru: String, en: String| edoc::Report {
        structure: None,
        edoc_id: None,
        diagnostics: vec![edoc::Diagnostic {
            rule: rule.into(),
            xpath: "/".into(),
            line: None,
            ru,
            en,
        }],
    };
    let Some(t) = trn else {
        return Some(why(
            "TRN.001",
            format!("Транзакция {transaction} не описана в пакете процесса"),
            format!("Transaction {transaction} is not in the process package"),
        ));
    };
    let expected_role = if msg == t.message {
        &t.initiator
    } else if t.responses.iter().any(|r| r == msg) {
        &t.responder
    } else {
        return Some(why(
            "TRN.002",
            format!("Сообщение {msg} не входит в транзакцию {transaction}"),
            format!("Message {msg} is not part of transaction {transaction}"),
        ));
    };
    // Only a participant address of a common process names its role (EAEU://SEG/CP/P/ROLE).
    let sender = env.sender()?.as_str().to_owned();
    let parts: Vec<&str> = sender.split('/').collect();
    if parts.get(3) != Some(&"CP") {
        return None;
    }
    let role = parts.get(5).copied().unwrap_or_default();
    (role != expected_role).then(|| {
        why(
            "TRN.003",
            format!("Сообщение {msg} в транзакции {transaction} отправляет роль {expected_role}, а не {role}"),
            format!("Message {msg} of transaction {transaction} is sent by role {expected_role}, not {role}"),
        )
    })
}
