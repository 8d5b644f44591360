//! The gateway keeps the initiator's side of every transaction its ISs start (Decision No. 5,
//! items 122-139): the engine of `process::engine` runs here per transaction, its snapshot kept
//! in the store (`store::transactions`), fed from the accept path (the request going out,
//! every RCV, PRS, ERR and response coming back for it) and ticked by a timer. When a time
//! limit passes the node sends the request again with a new MessageID and the same
//! ConversationID, as often as the transaction's retries allow, and then tells the IS with an
//! ERR that the transaction failed. A node keeps only the transactions of the process
//! versions it loads.
//!
//! What is fed is what this node has durably accepted, after the commit; a crash between the
//! commit and the feeding loses that event, and the engine then times out and retries, which
//! the responder answers again (a retry of the request gets the last answer).

use envelope::{Envelope, MessageKind, Origin, ParseOptions, SignalError, UrnUuid};
use process::engine::{Action, Event, Outcome, Shape, Snapshot, Transaction};
use process::package::TransactionDef;
use store::Route;
use store::transactions::KeptTransaction;

use crate::gateway::{Node, Source};
use crate::{NodeError, from_micros, micros};

/// How many due transactions one timer pass handles.
const DUE_BATCH: i64 = 256;

/// How long an ended transaction is kept: a late response to it is refused (TRN.007) while it
/// is; after that, a response is judged only by the conversation rules.
const KEEP_ENDED_SECS: i64 = 7 * 24 * 3600;

fn shape(t: &TransactionDef) -> Shape<'_> {
    Shape {
        message: &t.message,
        responses: &t.responses,
        initiator: &t.initiator,
        responder: &t.responder,
    }
}

fn kept(t: &Transaction, mut k: KeptTransaction, now: i64) -> KeptTransaction {
    if let Some(s) = t.snapshot() {
        k.state = s.state;
        k.attempts = i64::from(s.attempts);
        k.outcome = s.outcome;
        k.why = s.why;
        k.deadline = s.deadline.map(micros);
    }
    k.updated_at = now;
    k
}

fn restore(def: &TransactionDef, k: &KeptTransaction) -> Option<Transaction> {
    let snap = Snapshot {
        state: k.state.clone(),
        deadline: k.deadline.map(from_micros),
        attempts: u32::try_from(k.attempts).ok()?,
        outcome: k.outcome.clone(),
        why: k.why.clone(),
    };
    Transaction::restore(def.pattern, def.timing(), &shape(def), &snap)
}

impl Node {
    /// Feeds what the node has just accepted to the transaction it belongs to: an IS's
    /// request starts one; a signal or a response relating to a kept request moves it on.
    pub(crate) async fn observe_transaction(&self, env: &Envelope, from_is: bool, route: &Route) {
        if let Err(e) = self.observe(env, from_is, route).await {
            tracing::warn!(message = %env.header.message_id, error = %e, "transaction not updated");
        }
    }

    async fn observe(&self, env: &Envelope, from_is: bool, route: &Route) -> Result<(), NodeError> {
        if self.screen.packages.is_empty() {
            return Ok(());
        }
        let Some(cp) = env.header.cp_action() else {
            return Ok(());
        };
        let now = self.now();
        // A request from one of this node's ISs: the initiator's side begins.
        if from_is
            && env.header.kind() == MessageKind::Application
            && env.header.relates_to.is_none()
        {
            let (Some(def), Some(msg)) = (
                self.screen
                    .transaction(cp.process.as_str(), &cp.version, &cp.transaction),
                cp.message_code(),
            ) else {
                return Ok(());
            };
            if msg != def.message {
                return Ok(());
            }
            let Some(sender) = env.sender() else {
                return Ok(());
            };
            let id = env.header.message_id.to_string();
            // The request again in the same conversation (a retry by the IS, or the node's own
            // retry passing this path): it belongs to the transaction already kept.
            if let Some(c) = env.header.conversation_id
                && let Some(k) = self
                    .store
                    .txn_pending_in(sender.as_str(), &c.to_string(), &def.code)
                    .await?
            {
                self.store.txn_add_message(&k.request_id, &id).await?;
                return Ok(());
            }
            let t = Transaction::initiate(def.pattern, def.timing(), &shape(def), now);
            if t.outcome() != &Outcome::Pending {
                return Ok(()); // information distribution: nothing is awaited
            }
            let k = kept(
                &t,
                KeptTransaction {
                    request_id: id,
                    participant: sender.as_str().to_owned(),
                    conversation_id: env.header.conversation_id.map(|c| c.to_string()),
                    process: cp.process.as_str().to_owned(),
                    version: cp.version.clone(),
                    transaction: def.code.clone(),
                    state: String::new(),
                    attempts: 0,
                    outcome: String::new(),
                    why: None,
                    deadline: None,
                    updated_at: 0,
                },
                micros(now),
            );
            self.store.txn_start(k).await?;
            return Ok(());
        }
        // Something coming back for a kept request, to one of this node's participants.
        if !matches!(
            route,
            Route::Outbox {
                destination: store::Destination::Local
            }
        ) {
            return Ok(());
        }
        let Some(rel) = &env.header.relates_to else {
            return Ok(());
        };
        let Some(k) = self.store.txn_of(&rel.id.to_string()).await? else {
            return Ok(());
        };
        let Some(def) = self
            .screen
            .transaction(&k.process, &k.version, &k.transaction)
        else {
            return Ok(());
        };
        let Some(mut t) = restore(def, &k) else {
            return Ok(());
        };
        let event = match (env.header.kind(), &env.body) {
            (MessageKind::Signal(kind), _) => Event::Signal(kind),
            (MessageKind::Application, _) => Event::Message {
                code: cp.message_code().unwrap_or_default().to_owned(),
                role: env
                    .sender()
                    .and_then(|a| crate::screen::role_of(a.as_str()).map(str::to_owned))
                    .unwrap_or_default(),
            },
            (MessageKind::Fault, _) => return Ok(()),
        };
        // What the engine asks of the initiator beyond its state (an RCV or PRS for a
        // response, an ERR) is its IS's to send; the gateway keeps the state.
        let _ = t.on(event, now);
        self.store
            .txn_update(&kept(&t, k, micros(now)), None)
            .await?;
        Ok(())
    }

    /// Forgets the transactions that ended more than a week ago (on the node's clock).
    pub async fn prune_transactions(&self) -> Result<u64, NodeError> {
        let before = micros(self.now()) - KEEP_ENDED_SECS * 1_000_000;
        Ok(self.store.txn_prune(before).await?)
    }

    /// One pass of the transaction timer: every kept transaction whose deadline has come is
    /// ticked; a retry goes out with a new MessageID, a transaction out of retries ends and its
    /// IS is told with an ERR. Returns how many were due.
    pub async fn tick_transactions(&self) -> Result<usize, NodeError> {
        let now = self.now();
        let due = self.store.txn_due(micros(now), DUE_BATCH).await?;
        for k in &due {
            let Some(def) = self
                .screen
                .transaction(&k.process, &k.version, &k.transaction)
            else {
                continue;
            };
            let Some(mut t) = restore(def, k) else {
                continue;
            };
            let actions = t.on(Event::Tick, now);
            let mut retry = None;
            for a in &actions {
                if let Action::Resend { attempt } = a {
                    match self.resend(k, *attempt).await {
                        Ok(id) => retry = Some(id),
                        Err(e) => {
                            tracing::warn!(request = %k.request_id, error = %e, "retry not sent")
                        }
                    }
                }
            }
            let next = kept(&t, k.clone(), micros(now));
            self.store.txn_update(&next, retry.as_deref()).await?;
            if let Outcome::Failed(why) | Outcome::Cancelled(why) = t.outcome() {
                self.tell_failed(k, why).await;
            }
        }
        Ok(due.len())
    }

    /// The request again, with a new MessageID and the same ConversationID, through the accept
    /// path as if its IS had sent it (stamped, signed for the next hop, screened).
    async fn resend(&self, k: &KeptTransaction, attempt: u32) -> Result<String, NodeError> {
        let bytes = self
            .store
            .envelope(&k.request_id)
            .await?
            .ok_or(NodeError::NotFound)?;
        let mut env = envelope::parse(&bytes, &ParseOptions::new(Origin::Any))?;
        env.header.message_id = UrnUuid::new_v4();
        env.header.integration = None;
        let to = env.header.to.clone().ok_or(NodeError::NotFound)?;
        let route = self.route(&to)?;
        let id = env.header.message_id.to_string();
        tracing::info!(request = %k.request_id, retry = %id, attempt, "transaction: request sent again");
        self.accept(env, route, Source::Is { received: None })
            .await?;
        Ok(id)
    }

    /// Tells the initiating IS that its transaction ended without success: an ERR from this
    /// node's gate relating to the request, routed like any message.
    async fn tell_failed(&self, k: &KeptTransaction, why: &str) {
        let Ok(Some(bytes)) = self.store.envelope(&k.request_id).await else {
            return;
        };
        let Ok(request) = envelope::parse(&bytes, &ParseOptions::new(Origin::Any)) else {
            return;
        };
        let error = SignalError {
            code: envelope::ErrorCode::FatalError,
            description: format!(
                "Транзакция {} запроса {} не завершена: {why}",
                k.transaction, k.request_id
            ),
            details: Some(format!(
                "transaction {} of request {} ended unsuccessfully: {why}",
                k.transaction, k.request_id
            )),
        };
        // Its identifiers derive from the request, so telling twice stores it once.
        let Some(notice) = crate::record::err_notice(
            &self.gate,
            self.segment.as_str(),
            &request,
            "transaction-failed",
            vec![error],
            self.now(),
        ) else {
            return;
        };
        let Some(rec) = self.notice_record(&notice) else {
            return;
        };
        let route = rec.route.clone();
        match self.store.accept(rec).await {
            Ok(_) => self.wake(&route),
            Err(e) => {
                tracing::warn!(request = %k.request_id, error = %e, "failure notice not stored")
            }
        }
    }
}
