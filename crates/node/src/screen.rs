//! Validation of e-documents addressed to this node's participants, before they are delivered:
//! an invalid document is kept (as evidence, state `failed`) but never reaches the IS, and its
//! sender gets an ERR signal with `Common:DataError` and every diagnostic.

use envelope::{Body, Envelope, Origin, ParseOptions, SignalError};
use process::Package;
use process::package::OnInvalid;
use store::{Destination, Route, Store};
use time::OffsetDateTime;

/// An ERR lists at most this many diagnostics; the rest are counted in the last entry.
const MAX_ERRORS: usize = 200;

/// The packages a node enforces and the validator threads for their documents.
pub(crate) struct Screen {
    pub(crate) packages: Vec<Package>,
    pool: Option<edoc::Pool>,
}

impl Screen {
    pub(crate) fn new(packages: Vec<Package>, pool: Option<edoc::Pool>) -> Screen {
        Screen { packages, pool }
    }

    /// The loaded edition of a process: only it is enforced; another version goes through.
    pub(crate) fn package(&self, process: &str, version: &str) -> Option<&Package> {
        self.packages
            .iter()
            .find(|p| p.process.code == process && p.process.version == version)
    }

    /// A transaction of the loaded edition of a process.
    pub(crate) fn transaction(
        &self,
        process: &str,
        version: &str,
        transaction: &str,
    ) -> Option<&process::package::TransactionDef> {
        self.package(process, version)?.transaction(transaction)
    }

    /// Why this node must refuse a document addressed to one of its participants (the ERR
    /// code and the diagnostics); None to deliver it.
    pub(crate) async fn check(
        &self,
        env: &Envelope,
        route: &Route,
        store: &Store,
        nsi: std::sync::Arc<nsi::Index>,
        now: OffsetDateTime,
    ) -> Option<(envelope::ErrorCode, edoc::Report)> {
        let pool = self.pool.as_ref()?;
        if !matches!(
            route,
            Route::Outbox {
                destination: Destination::Local
            }
        ) {
            return None;
        }
        let Body::Document(doc) = &env.body else {
            return None;
        };
        let cp = env.header.cp_action()?;
        let msg = cp.message_code()?;
        if !pool.knows(cp.process.as_str(), &cp.version, msg) {
            return None;
        }
        let pkg = self.package(cp.process.as_str(), &cp.version)?;
        let trn = pkg.transaction(&cp.transaction);
        if let Some(why) = unexpected(env, &cp.procedure, &cp.transaction, msg, trn) {
            return Some((envelope::ErrorCode::UnexpectedMessage, why));
        }
        if let Some(t) = trn
            && let Some(why) = out_of_conversation(env, t, msg, store).await
        {
            return Some((envelope::ErrorCode::UnexpectedMessage, why));
        }
        if let Some(t) = trn
            && let Some(why) = after_the_end(env, t, msg, store).await
        {
            return Some((envelope::ErrorCode::UnexpectedMessage, why));
        }
        // The responding IS answers with a processing result instead (it has the process's
        // common resource, which some rules need).
        if trn.is_some_and(|t| t.on_invalid == OnInvalid::ProcessingResult) {
            return None;
        }
        let ref_id = match trn {
            Some(t) if t.message != msg => ref_edoc_id(store, env).await,
            _ => None,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = edoc::service::Job {
            bytes: doc.clone().into_bytes(),
            process: cp.process.as_str().to_owned(),
            version: cp.version.clone(),
            message: msg.to_owned(),
            ref_id,
            nsi,
            common: None,
            now,
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
}

/// The `EDocId` of the document a response answers (the message in `wsa:RelatesTo`).
async fn ref_edoc_id(store: &Store, env: &Envelope) -> Option<String> {
    let id = env.header.relates_to.as_ref()?.id.to_string();
    let bytes = store.envelope(&id).await.ok()??;
    let orig = envelope::parse(&bytes, &ParseOptions::new(Origin::Any)).ok()?;
    match &orig.body {
        Body::Document(d) => edoc::edoc_id(d),
        _ => None,
    }
}

/// The ERR entries that tell a sender why its document was refused, one per diagnostic.
pub(crate) fn refusal_errors(
    code: &envelope::ErrorCode,
    report: &edoc::Report,
) -> Vec<SignalError> {
    let mut errors: Vec<SignalError> = report
        .diagnostics
        .iter()
        .take(MAX_ERRORS)
        .map(|d| SignalError {
            code: code.clone(),
            description: format!("[{}] {}", d.rule, d.ru),
            details: Some(d.signal_details(report.edoc_id.as_deref())),
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
        });
    }
    errors
}

/// A message the transaction does not have, or from a role that may not send it: the
/// transaction table of the process says who starts and who answers.
/// A refusal of the conversation rules: one diagnostic about the envelope, not the document.
fn why(rule: &str, ru: String, en: String) -> edoc::Report {
    edoc::Report {
        structure: None,
        edoc_id: None,
        diagnostics: vec![edoc::Diagnostic {
            rule: rule.into(),
            xpath: "/".into(),
            line: None,
            ru,
            en,
        }],
    }
}

/// The role part of a common-process participant address (`EAEU://SEG/CP/P/ROLE`), if it is
/// one.
pub(crate) fn role_of(address: &str) -> Option<&str> {
    let parts: Vec<&str> = address.split('/').collect();
    (parts.get(3) == Some(&"CP")).then(|| parts.get(5).copied().unwrap_or_default())
}

/// A response must answer the transaction's request in this conversation: its `RelatesTo`
/// names a message this node holds, of the same conversation, that is the transaction's
/// initiating message (the request or a retry of it).
async fn out_of_conversation(
    env: &Envelope,
    t: &process::package::TransactionDef,
    msg: &str,
    store: &Store,
) -> Option<edoc::Report> {
    if msg == t.message {
        return None;
    }
    let Some(rel) = &env.header.relates_to else {
        return Some(why(
            "TRN.006",
            format!(
                "Ответ {msg} в транзакции {} не ссылается (RelatesTo) на запрос",
                t.code
            ),
            format!(
                "Response {msg} of transaction {} has no RelatesTo naming the request",
                t.code
            ),
        ));
    };
    let id = rel.id.to_string();
    let asked = store.message(&id).await.ok().flatten();
    let conversation = env.header.conversation_id.map(|c| c.to_string());
    let fits = asked.as_ref().is_some_and(|m| {
        m.action.rsplit('/').next() == Some(t.message.as_str())
            && m.action.contains(&format!("/{}/", t.code))
            && m.conversation_id == conversation
    });
    (!fits).then(|| {
        why(
            "TRN.006",
            format!(
                "Ответ {msg} ссылается на {id}, который не является запросом {} транзакции {} в этом диалоге",
                t.message, t.code
            ),
            format!(
                "Response {msg} relates to {id}, which is not the {} of transaction {} in this conversation",
                t.message, t.code
            ),
        )
    })
}

/// A response to a request whose transaction this node keeps (`conversations`) and which has
/// ended: completed by an earlier response, or failed when its time ran out. The initiator's IS
/// has been told how it ended; a late or second response would contradict that.
async fn after_the_end(
    env: &Envelope,
    t: &process::package::TransactionDef,
    msg: &str,
    store: &Store,
) -> Option<edoc::Report> {
    if msg == t.message {
        return None;
    }
    let rel = env.header.relates_to.as_ref()?;
    let kept = store.txn_of(&rel.id.to_string()).await.ok()??;
    if kept.outcome == "pending" {
        return None;
    }
    let how = match &kept.why {
        Some(w) => format!("{}: {w}", kept.outcome),
        None => kept.outcome.clone(),
    };
    Some(why(
        "TRN.007",
        format!(
            "Ответ {msg} пришёл после окончания транзакции {} ({how})",
            t.code
        ),
        format!(
            "Response {msg} came after transaction {} ended ({how})",
            t.code
        ),
    ))
}

fn unexpected(
    env: &Envelope,
    procedure: &str,
    transaction: &str,
    msg: &str,
    trn: Option<&process::package::TransactionDef>,
) -> Option<edoc::Report> {
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
    if procedure != t.procedure {
        return Some(why(
            "TRN.004",
            format!(
                "Транзакция {transaction} входит в процедуру {}, а не {procedure}",
                t.procedure
            ),
            format!(
                "Transaction {transaction} belongs to procedure {}, not {procedure}",
                t.procedure
            ),
        ));
    }
    // The other party: who answers the request, or who asked.
    let expected_recipient = if msg == t.message {
        &t.responder
    } else {
        &t.initiator
    };
    // Only a participant address of a common process names its role (EAEU://SEG/CP/P/ROLE).
    if let Some(role) = env.sender().and_then(|a| role_of(a.as_str()))
        && role != expected_role
    {
        return Some(why(
            "TRN.003",
            format!(
                "Сообщение {msg} в транзакции {transaction} отправляет роль {expected_role}, а не {role}"
            ),
            format!(
                "Message {msg} of transaction {transaction} is sent by role {expected_role}, not {role}"
            ),
        ));
    }
    let to = env.header.to.as_ref().map(|a| a.as_str().to_owned());
    if let Some(role) = to.as_deref().and_then(role_of)
        && role != expected_recipient
    {
        return Some(why(
            "TRN.005",
            format!(
                "Сообщение {msg} в транзакции {transaction} получает роль {expected_recipient}, а не {role}"
            ),
            format!(
                "Message {msg} of transaction {transaction} is received by role {expected_recipient}, not {role}"
            ),
        ));
    }
    None
}
