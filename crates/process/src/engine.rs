//! The six transaction patterns of Decision No. 5 (items 122–139) as explicit state machines.
//!
//! A `Transaction` is one side (initiator or responder) of one transaction instance. It is fed
//! events (a signal or a message arrived, the local IS finished processing or produced its
//! answer, time passed) with the current time from the caller's clock, and returns the
//! actions to take: signals to send, a retry of the initiating message, an ERR
//! `Common:UnexpectedMessage` for a message that does not fit. It never sleeps and never reads
//! a clock itself, so tests walk every path without waiting.
//!
//! Patterns, as the reference notes describe them (`eaeu-iis-reference.md` §1.7):
//! - mutual obligations: request → RCV → PRS → response → RCV → PRS, then a final window in
//!   which an ERR cancels the transaction on both sides; its quiet expiry is success;
//! - question/response: the response within the response time, else resend up to the retry
//!   count, then fail;
//! - request/response: request → (RCV) → (PRS) → response, each wait bounded;
//! - request/confirmation: request → response → RCV back when receipt confirmation is set;
//! - notification: notification → RCV;
//! - information distribution: sent, done; nothing is awaited.

use std::time::Duration;

use envelope::{ErrorCode, SignalKind};
use serde::Deserialize;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    MutualObligations,
    QuestionResponse,
    RequestResponse,
    RequestConfirmation,
    Notification,
    InformationDistribution,
}

/// The time parameters of a transaction (row 9 of its table) and its retry count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    pub receipt: Option<Duration>,
    pub processing: Option<Duration>,
    pub response: Option<Duration>,
    pub retries: u32,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::MutualObligations => "mutual-obligations",
            Pattern::QuestionResponse => "question-response",
            Pattern::RequestResponse => "request-response",
            Pattern::RequestConfirmation => "request-confirmation",
            Pattern::Notification => "notification",
            Pattern::InformationDistribution => "information-distribution",
        }
    }

    pub fn has_response(self) -> bool {
        !matches!(
            self,
            Pattern::Notification | Pattern::InformationDistribution
        )
    }

    /// Whether the parameters fit the pattern.
    pub fn check(self, t: &Timing, has_responses: bool) -> Result<(), String> {
        match (self.has_response(), has_responses) {
            (true, false) => {
                return Err(format!(
                    "a {} transaction names its response messages",
                    self.name()
                ));
            }
            (false, true) => {
                return Err(format!(
                    "a {} transaction has no response messages",
                    self.name()
                ));
            }
            _ => {}
        }
        match self {
            Pattern::QuestionResponse | Pattern::RequestResponse | Pattern::RequestConfirmation
                if t.response.is_none() =>
            {
                Err(format!(
                    "a {} transaction needs a response time",
                    self.name()
                ))
            }
            Pattern::MutualObligations if t.response.is_none() || t.processing.is_none() => {
                Err("a mutual-obligations transaction needs processing and response times".into())
            }
            Pattern::Notification if t.receipt.is_none() => {
                Err("a notification transaction needs a receipt-confirmation time".into())
            }
            Pattern::InformationDistribution
                if t.receipt.is_some()
                    || t.processing.is_some()
                    || t.response.is_some()
                    || t.retries > 0 =>
            {
                Err(
                    "an information-distribution transaction awaits nothing: no times, no retries"
                        .into(),
                )
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Initiator,
    Responder,
}

/// Something that happened to the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A signal from the other side.
    Signal(SignalKind),
    /// An application message `code` from a participant in `role`.
    Message { code: String, role: String },
    /// The local IS finished processing what it received: accepted or refused.
    Processed { accepted: bool },
    /// The local IS answers with message `code` (responder).
    Respond { code: String },
    /// Time passed; deadlines are checked.
    Tick,
}

/// What the side must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this signal (RCV or PRS) to the other side.
    Signal(SignalKind),
    /// Send an ERR with this code.
    Err(ErrorCode),
    /// Resend the initiating message with a new MessageID and the same ConversationID;
    /// `attempt` counts from 1.
    Resend { attempt: u32 },
    /// Send the response message `code`.
    Response(String),
    /// Undo what this side did (mutual obligations, on both sides).
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Completed,
    Failed(String),
    Cancelled(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    // Initiator.
    AwaitRcv,
    AwaitPrs,
    AwaitResponse,
    /// Mutual obligations: the response arrived; the initiator's IS processes it.
    ProcessingResponse,
    // Responder.
    Processing,
    Answering,
    /// Request/confirmation: the response went out; its RCV is awaited.
    AwaitResponseRcv,
    /// Mutual obligations: the response went out; RCV/PRS or an ERR may still come.
    FinalWindow,
    Done,
}

/// What a store keeps of the initiator's side of a transaction (`Transaction::snapshot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub state: String,
    pub deadline: Option<OffsetDateTime>,
    pub attempts: u32,
    /// pending, completed, failed or cancelled.
    pub outcome: String,
    /// Why it failed or was cancelled.
    pub why: Option<String>,
}

/// One side of one transaction instance.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub pattern: Pattern,
    pub side: Side,
    timing: Timing,
    message: String,
    responses: Vec<String>,
    initiator: String,
    responder: String,
    state: State,
    deadline: Option<OffsetDateTime>,
    attempts: u32,
    outcome: Outcome,
    /// What the responder last sent, repeated when a retry of the request arrives.
    last_answer: Vec<Action>,
    /// The responder has seen the initiating message.
    seen: bool,
}

/// The roles and messages of a transaction, as its definition gives them.
#[derive(Debug, Clone)]
pub struct Shape<'a> {
    pub message: &'a str,
    pub responses: &'a [String],
    pub initiator: &'a str,
    pub responder: &'a str,
}

fn after(now: OffsetDateTime, d: Option<Duration>) -> Option<OffsetDateTime> {
    d.map(|d| now + d)
}

impl Transaction {
    fn new(
        pattern: Pattern,
        timing: Timing,
        shape: &Shape<'_>,
        side: Side,
        state: State,
    ) -> Transaction {
        Transaction {
            pattern,
            side,
            timing,
            message: shape.message.to_owned(),
            responses: shape.responses.to_vec(),
            initiator: shape.initiator.to_owned(),
            responder: shape.responder.to_owned(),
            state,
            deadline: None,
            attempts: 0,
            outcome: Outcome::Pending,
            last_answer: Vec::new(),
            seen: false,
        }
    }

    /// The initiator has sent the initiating message at `now`.
    pub fn initiate(
        pattern: Pattern,
        timing: Timing,
        shape: &Shape<'_>,
        now: OffsetDateTime,
    ) -> Transaction {
        let mut t = Transaction::new(pattern, timing, shape, Side::Initiator, State::Done);
        t.enter_first_wait(now);
        t
    }

    /// The first wait after the initiating message went out (again).
    fn enter_first_wait(&mut self, now: OffsetDateTime) {
        let t = self.timing;
        let (state, deadline) = match self.pattern {
            Pattern::InformationDistribution => {
                self.outcome = Outcome::Completed;
                (State::Done, None)
            }
            Pattern::Notification => (State::AwaitRcv, after(now, t.receipt)),
            Pattern::QuestionResponse | Pattern::RequestConfirmation => {
                (State::AwaitResponse, after(now, t.response))
            }
            Pattern::RequestResponse | Pattern::MutualObligations => {
                match (t.receipt, t.processing) {
                    (Some(r), _) => (State::AwaitRcv, Some(now + r)),
                    (None, Some(p)) => (State::AwaitPrs, Some(now + p)),
                    (None, None) => (State::AwaitResponse, after(now, t.response)),
                }
            }
        };
        self.state = state;
        self.deadline = deadline;
    }

    /// The responder received the initiating message `code` from `role` at `now`.
    pub fn respond_to(
        pattern: Pattern,
        timing: Timing,
        shape: &Shape<'_>,
        code: &str,
        role: &str,
        now: OffsetDateTime,
    ) -> (Transaction, Vec<Action>) {
        let mut t = Transaction::new(pattern, timing, shape, Side::Responder, State::Processing);
        let actions = t.on(
            Event::Message {
                code: code.into(),
                role: role.into(),
            },
            now,
        );
        (t, actions)
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// When the caller should deliver the next `Tick`.
    pub fn deadline(&self) -> Option<OffsetDateTime> {
        self.deadline
    }

    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn finish(&mut self, o: Outcome) {
        self.outcome = o;
        self.state = State::Done;
        self.deadline = None;
    }

    fn unexpected(&self) -> Vec<Action> {
        vec![Action::Err(ErrorCode::UnexpectedMessage)]
    }

    /// Feeds one event at `now`; returns what to do.
    pub fn on(&mut self, event: Event, now: OffsetDateTime) -> Vec<Action> {
        if let Event::Tick = event {
            return self.tick(now);
        }
        if self.state == State::Done {
            // A finished transaction takes nothing more, except a retry of the request, which
            // gets the last answer again (the other side missed it).
            return match (&event, self.side) {
                (Event::Message { code, role }, Side::Responder)
                    if *code == self.message && *role == self.initiator =>
                {
                    self.last_answer.clone()
                }
                (Event::Message { .. }, _) => self.unexpected(),
                _ => Vec::new(),
            };
        }
        match self.side {
            Side::Initiator => self.on_initiator(event, now),
            Side::Responder => self.on_responder(event, now),
        }
    }

    fn on_initiator(&mut self, event: Event, now: OffsetDateTime) -> Vec<Action> {
        let t = self.timing;
        match (self.state, event) {
            (_, Event::Signal(SignalKind::Err)) if self.state != State::ProcessingResponse => {
                if self.pattern == Pattern::MutualObligations {
                    self.finish(Outcome::Cancelled("the responder answered ERR".into()));
                    vec![Action::Cancel]
                } else {
                    self.finish(Outcome::Failed("the responder answered ERR".into()));
                    Vec::new()
                }
            }
            (State::AwaitRcv, Event::Signal(SignalKind::Rcv)) => {
                if self.pattern == Pattern::Notification {
                    self.finish(Outcome::Completed);
                } else if let Some(p) = t.processing {
                    self.state = State::AwaitPrs;
                    self.deadline = Some(now + p);
                } else {
                    self.state = State::AwaitResponse;
                    self.deadline = after(now, t.response);
                }
                Vec::new()
            }
            // PRS implies receipt: a lost RCV does not stall the transaction.
            (State::AwaitRcv | State::AwaitPrs, Event::Signal(SignalKind::Prs))
                if self.pattern.has_response() =>
            {
                self.state = State::AwaitResponse;
                self.deadline = after(now, t.response);
                Vec::new()
            }
            (
                State::AwaitRcv | State::AwaitPrs | State::AwaitResponse,
                Event::Message { code, role },
            ) if self.pattern.has_response()
                && self.responses.contains(&code)
                && role == self.responder =>
            {
                match self.pattern {
                    Pattern::MutualObligations => {
                        self.state = State::ProcessingResponse;
                        self.deadline = None;
                        vec![Action::Signal(SignalKind::Rcv)]
                    }
                    Pattern::RequestConfirmation if t.receipt.is_some() => {
                        self.finish(Outcome::Completed);
                        vec![Action::Signal(SignalKind::Rcv)]
                    }
                    _ => {
                        self.finish(Outcome::Completed);
                        Vec::new()
                    }
                }
            }
            (State::ProcessingResponse, Event::Processed { accepted: true }) => {
                self.finish(Outcome::Completed);
                vec![Action::Signal(SignalKind::Prs)]
            }
            (State::ProcessingResponse, Event::Processed { accepted: false }) => {
                self.finish(Outcome::Cancelled(
                    "the initiator could not process the response".into(),
                ));
                vec![Action::Err(ErrorCode::DataError), Action::Cancel]
            }
            (_, Event::Message { .. }) => self.unexpected(),
            // Late or repeated signals change nothing.
            _ => Vec::new(),
        }
    }

    fn on_responder(&mut self, event: Event, now: OffsetDateTime) -> Vec<Action> {
        let t = self.timing;
        match (self.state, event) {
            (State::Processing, Event::Message { code, role })
                if code == self.message && role == self.initiator && !self.seen =>
            {
                self.seen = true;
                if self.pattern == Pattern::InformationDistribution {
                    self.finish(Outcome::Completed);
                    return Vec::new();
                }
                let out = if t.receipt.is_some() || self.pattern == Pattern::Notification {
                    vec![Action::Signal(SignalKind::Rcv)]
                } else {
                    Vec::new()
                };
                self.last_answer = out.clone();
                out
            }
            (State::Processing, Event::Processed { accepted: false }) => {
                self.finish(Outcome::Failed("the document was refused".into()));
                self.last_answer = vec![Action::Err(ErrorCode::DataError)];
                self.last_answer.clone()
            }
            (State::Processing, Event::Processed { accepted: true }) => {
                let mut out = Vec::new();
                let guaranteed = t.processing.is_some()
                    && matches!(
                        self.pattern,
                        Pattern::RequestResponse | Pattern::MutualObligations
                    );
                if guaranteed {
                    out.push(Action::Signal(SignalKind::Prs));
                }
                if self.pattern.has_response() {
                    self.state = State::Answering;
                    self.deadline = after(now, t.response);
                } else {
                    self.finish(Outcome::Completed);
                }
                self.last_answer.extend(out.clone());
                out
            }
            (State::Answering, Event::Respond { code }) if self.responses.contains(&code) => {
                self.last_answer.push(Action::Response(code.clone()));
                match self.pattern {
                    Pattern::RequestConfirmation if t.receipt.is_some() => {
                        self.state = State::AwaitResponseRcv;
                        self.deadline = after(now, t.receipt);
                    }
                    Pattern::MutualObligations => {
                        self.state = State::FinalWindow;
                        self.deadline = after(now, t.processing);
                    }
                    _ => self.finish(Outcome::Completed),
                }
                vec![Action::Response(code)]
            }
            (State::Answering, Event::Respond { code }) => {
                // The IS tried to answer with a message the transaction does not allow.
                vec![Action::Err(ErrorCode::Process(format!(
                    "{code} does not answer {}",
                    self.message
                )))]
            }
            (State::AwaitResponseRcv, Event::Signal(SignalKind::Rcv)) => {
                self.finish(Outcome::Completed);
                Vec::new()
            }
            (State::FinalWindow, Event::Signal(SignalKind::Err)) => {
                self.finish(Outcome::Cancelled(
                    "the initiator answered ERR to the response".into(),
                ));
                vec![Action::Cancel]
            }
            (State::FinalWindow, Event::Signal(SignalKind::Prs)) => {
                self.finish(Outcome::Completed);
                Vec::new()
            }
            // A retry of the request while still working on it: repeat what was said so far.
            (
                State::Processing | State::Answering | State::AwaitResponseRcv | State::FinalWindow,
                Event::Message { code, role },
            ) if code == self.message && role == self.initiator => self.last_answer.clone(),
            (_, Event::Message { .. }) => self.unexpected(),
            _ => Vec::new(),
        }
    }

    /// The initiator's side as words and numbers a store keeps (state, deadline, attempts,
    /// outcome); None for a responder, whose side its IS keeps.
    pub fn snapshot(&self) -> Option<Snapshot> {
        if self.side != Side::Initiator {
            return None;
        }
        let state = match self.state {
            State::AwaitRcv => "await-rcv",
            State::AwaitPrs => "await-prs",
            State::AwaitResponse => "await-response",
            State::ProcessingResponse => "processing-response",
            State::Done => "done",
            _ => return None,
        };
        let (outcome, why) = match &self.outcome {
            Outcome::Pending => ("pending", None),
            Outcome::Completed => ("completed", None),
            Outcome::Failed(w) => ("failed", Some(w.clone())),
            Outcome::Cancelled(w) => ("cancelled", Some(w.clone())),
        };
        Some(Snapshot {
            state: state.to_owned(),
            deadline: self.deadline,
            attempts: self.attempts,
            outcome: outcome.to_owned(),
            why,
        })
    }

    /// The initiator's side of a transaction of this shape, as `snapshot` left it; None when
    /// the snapshot does not read.
    pub fn restore(
        pattern: Pattern,
        timing: Timing,
        shape: &Shape<'_>,
        snap: &Snapshot,
    ) -> Option<Transaction> {
        let state = match snap.state.as_str() {
            "await-rcv" => State::AwaitRcv,
            "await-prs" => State::AwaitPrs,
            "await-response" => State::AwaitResponse,
            "processing-response" => State::ProcessingResponse,
            "done" => State::Done,
            _ => return None,
        };
        let why = || snap.why.clone().unwrap_or_default();
        let outcome = match snap.outcome.as_str() {
            "pending" => Outcome::Pending,
            "completed" => Outcome::Completed,
            "failed" => Outcome::Failed(why()),
            "cancelled" => Outcome::Cancelled(why()),
            _ => return None,
        };
        let mut t = Transaction::new(pattern, timing, shape, Side::Initiator, state);
        t.deadline = snap.deadline;
        t.attempts = snap.attempts;
        t.outcome = outcome;
        Some(t)
    }

    fn tick(&mut self, now: OffsetDateTime) -> Vec<Action> {
        let Some(d) = self.deadline else {
            return Vec::new();
        };
        if now < d {
            return Vec::new();
        }
        match (self.side, self.state) {
            (Side::Initiator, State::AwaitRcv | State::AwaitPrs | State::AwaitResponse) => {
                if self.attempts < self.timing.retries {
                    self.attempts += 1;
                    self.enter_first_wait(now);
                    vec![Action::Resend {
                        attempt: self.attempts,
                    }]
                } else {
                    let what = match self.state {
                        State::AwaitRcv => "no RCV",
                        State::AwaitPrs => "no PRS",
                        _ => "no response",
                    };
                    let why = format!("{what} in time after {} attempts", self.attempts + 1);
                    if self.pattern == Pattern::MutualObligations {
                        self.finish(Outcome::Cancelled(why));
                        vec![Action::Cancel]
                    } else {
                        self.finish(Outcome::Failed(why));
                        Vec::new()
                    }
                }
            }
            // The final window closed without an ERR: mutual obligations succeeded.
            (Side::Responder, State::FinalWindow) => {
                self.finish(Outcome::Completed);
                Vec::new()
            }
            (Side::Responder, State::Answering) => {
                let why = "the response was not produced in time".to_owned();
                if self.pattern == Pattern::MutualObligations {
                    self.finish(Outcome::Cancelled(why));
                    vec![Action::Cancel]
                } else {
                    self.finish(Outcome::Failed(why));
                    vec![Action::Err(ErrorCode::FatalError)]
                }
            }
            (Side::Responder, State::AwaitResponseRcv) => {
                self.finish(Outcome::Failed("no RCV for the response".into()));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}
