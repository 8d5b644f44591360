//! Every path of every transaction pattern, driven by a clock the test moves: what each side
//! sends, when it resends, when it gives up, and what it says to a message that does not fit.

use std::time::Duration;

use envelope::{ErrorCode, SignalKind};
use process::engine::{Action, Event, Outcome, Pattern, Shape, Timing, Transaction};
use time::OffsetDateTime;

const REQ: &str = "P.XX.01.MSG.001";
const RESP: &str = "P.XX.01.MSG.002";
const INIT: &str = "P.XX.01.ACT.001";
const RESPONDER: &str = "P.XX.01.ACT.002";

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn shape(responses: &[String]) -> Shape<'_> {
    Shape {
        message: REQ,
        responses,
        initiator: INIT,
        responder: RESPONDER,
    }
}

use Action::{Cancel, Resend, Response};
const RCV: Action = Action::Signal(SignalKind::Rcv);
const PRS: Action = Action::Signal(SignalKind::Prs);

fn err(c: ErrorCode) -> Action {
    Action::Err(c)
}

fn msg(code: &str, role: &str) -> Event {
    Event::Message {
        code: code.into(),
        role: role.into(),
    }
}

fn sig(k: SignalKind) -> Event {
    Event::Signal(k)
}

/// Feeds `steps` (seconds after start, event, the actions expected) and checks the outcome.
fn check(mut t: Transaction, steps: &[(u64, Event, Vec<Action>)], outcome: Outcome) {
    for (at, e, want) in steps {
        let got = t.on(e.clone(), t0() + Duration::from_secs(*at));
        assert_eq!(&got, want, "at {at} s, {e:?}");
    }
    assert_eq!(t.outcome(), &outcome);
}

fn initiator(p: Pattern, timing: Timing) -> Transaction {
    let responses = if matches!(p, Pattern::Notification | Pattern::InformationDistribution) {
        vec![]
    } else {
        vec![RESP.to_owned()]
    };
    Transaction::initiate(p, timing, &shape(&responses), t0())
}

fn responder(p: Pattern, timing: Timing) -> (Transaction, Vec<Action>) {
    let responses = if matches!(p, Pattern::Notification | Pattern::InformationDistribution) {
        vec![]
    } else {
        vec![RESP.to_owned()]
    };
    Transaction::respond_to(p, timing, &shape(&responses), REQ, INIT, t0())
}

fn guaranteed(retries: u32) -> Timing {
    Timing {
        receipt: secs(10),
        processing: secs(60),
        response: secs(300),
        retries,
    }
}

#[test]
fn information_distribution_is_done_once_sent() {
    let t = initiator(Pattern::InformationDistribution, Timing::default());
    assert_eq!(t.outcome(), &Outcome::Completed);
    assert_eq!(t.deadline(), None);
    let (t, a) = responder(Pattern::InformationDistribution, Timing::default());
    assert_eq!((a, t.outcome()), (vec![], &Outcome::Completed));
}

#[test]
fn notification_completes_on_rcv_resends_then_fails() {
    let timing = Timing {
        receipt: secs(10),
        retries: 2,
        ..Default::default()
    };
    check(
        initiator(Pattern::Notification, timing),
        &[(3, sig(SignalKind::Rcv), vec![])],
        Outcome::Completed,
    );
    check(
        initiator(Pattern::Notification, timing),
        &[
            (9, Event::Tick, vec![]),
            (10, Event::Tick, vec![Resend { attempt: 1 }]),
            (20, Event::Tick, vec![Resend { attempt: 2 }]),
            (29, Event::Tick, vec![]),
            (30, Event::Tick, vec![]),
        ],
        Outcome::Failed("no RCV in time after 3 attempts".into()),
    );
    check(
        initiator(Pattern::Notification, timing),
        &[
            (10, Event::Tick, vec![Resend { attempt: 1 }]),
            (12, sig(SignalKind::Rcv), vec![]),
        ],
        Outcome::Completed,
    );
    check(
        initiator(Pattern::Notification, timing),
        &[(1, sig(SignalKind::Err), vec![])],
        Outcome::Failed("the responder answered ERR".into()),
    );
    let (t, a) = responder(Pattern::Notification, timing);
    assert_eq!(a, vec![RCV]);
    check(
        t,
        &[(1, Event::Processed { accepted: true }, vec![])],
        Outcome::Completed,
    );
}

#[test]
fn question_response_waits_resends_and_refuses_what_does_not_fit() {
    let timing = Timing {
        response: secs(30),
        retries: 1,
        ..Default::default()
    };
    check(
        initiator(Pattern::QuestionResponse, timing),
        &[(5, msg(RESP, RESPONDER), vec![])],
        Outcome::Completed,
    );
    check(
        initiator(Pattern::QuestionResponse, timing),
        &[
            (
                5,
                msg(REQ, RESPONDER),
                vec![err(ErrorCode::UnexpectedMessage)],
            ),
            (6, msg(RESP, INIT), vec![err(ErrorCode::UnexpectedMessage)]),
            (30, Event::Tick, vec![Resend { attempt: 1 }]),
            (40, msg(RESP, RESPONDER), vec![]),
            (
                41,
                msg(RESP, RESPONDER),
                vec![err(ErrorCode::UnexpectedMessage)],
            ),
        ],
        Outcome::Completed,
    );
    check(
        initiator(Pattern::QuestionResponse, timing),
        &[
            (30, Event::Tick, vec![Resend { attempt: 1 }]),
            (60, Event::Tick, vec![]),
        ],
        Outcome::Failed("no response in time after 2 attempts".into()),
    );
    let (t, a) = responder(Pattern::QuestionResponse, timing);
    assert_eq!(a, vec![]);
    check(
        t,
        &[
            (1, Event::Processed { accepted: true }, vec![]),
            (
                2,
                Event::Respond { code: RESP.into() },
                vec![Response(RESP.into())],
            ),
        ],
        Outcome::Completed,
    );
}

#[test]
fn request_response_guaranteed_walks_rcv_prs_response() {
    check(
        initiator(Pattern::RequestResponse, guaranteed(0)),
        &[
            (1, sig(SignalKind::Rcv), vec![]),
            (2, sig(SignalKind::Prs), vec![]),
            (100, msg(RESP, RESPONDER), vec![]),
        ],
        Outcome::Completed,
    );
    // A lost RCV: PRS still moves the transaction on.
    check(
        initiator(Pattern::RequestResponse, guaranteed(0)),
        &[
            (5, sig(SignalKind::Prs), vec![]),
            (6, msg(RESP, RESPONDER), vec![]),
        ],
        Outcome::Completed,
    );
    // Each wait has its own limit: RCV 10 s, then PRS 60 s.
    check(
        initiator(Pattern::RequestResponse, guaranteed(1)),
        &[
            (1, sig(SignalKind::Rcv), vec![]),
            (60, Event::Tick, vec![]),
            (61, Event::Tick, vec![Resend { attempt: 1 }]),
            (71, Event::Tick, vec![]),
        ],
        Outcome::Failed("no RCV in time after 2 attempts".into()),
    );
    check(
        initiator(Pattern::RequestResponse, guaranteed(0)),
        &[
            (1, sig(SignalKind::Rcv), vec![]),
            (2, sig(SignalKind::Err), vec![]),
        ],
        Outcome::Failed("the responder answered ERR".into()),
    );

    let (t, a) = responder(Pattern::RequestResponse, guaranteed(0));
    assert_eq!(a, vec![RCV]);
    check(
        t,
        &[
            (1, Event::Processed { accepted: true }, vec![PRS]),
            // The initiator resends meanwhile: it hears the same again.
            (2, msg(REQ, INIT), vec![RCV, PRS]),
            (
                3,
                msg(REQ, RESPONDER),
                vec![err(ErrorCode::UnexpectedMessage)],
            ),
            (
                4,
                Event::Respond { code: REQ.into() },
                vec![err(ErrorCode::Process(format!(
                    "{REQ} does not answer {REQ}"
                )))],
            ),
            (
                5,
                Event::Respond { code: RESP.into() },
                vec![Response(RESP.into())],
            ),
            (6, msg(REQ, INIT), vec![RCV, PRS, Response(RESP.into())]),
        ],
        Outcome::Completed,
    );
    let (t, _) = responder(Pattern::RequestResponse, guaranteed(0));
    check(
        t,
        &[(
            1,
            Event::Processed { accepted: false },
            vec![err(ErrorCode::DataError)],
        )],
        Outcome::Failed("the document was refused".into()),
    );
    let (t, _) = responder(Pattern::RequestResponse, guaranteed(0));
    check(
        t,
        &[
            (1, Event::Processed { accepted: true }, vec![PRS]),
            (301, Event::Tick, vec![err(ErrorCode::FatalError)]),
        ],
        Outcome::Failed("the response was not produced in time".into()),
    );
}

#[test]
fn request_confirmation_sends_rcv_back_for_the_response() {
    let timing = Timing {
        receipt: secs(10),
        response: secs(60),
        ..Default::default()
    };
    check(
        initiator(Pattern::RequestConfirmation, timing),
        &[(5, msg(RESP, RESPONDER), vec![RCV])],
        Outcome::Completed,
    );
    let without = Timing {
        response: secs(60),
        ..Default::default()
    };
    check(
        initiator(Pattern::RequestConfirmation, without),
        &[(5, msg(RESP, RESPONDER), vec![])],
        Outcome::Completed,
    );

    let (t, a) = responder(Pattern::RequestConfirmation, timing);
    assert_eq!(a, vec![RCV]);
    check(
        t,
        &[
            (1, Event::Processed { accepted: true }, vec![]),
            (
                2,
                Event::Respond { code: RESP.into() },
                vec![Response(RESP.into())],
            ),
            (3, sig(SignalKind::Rcv), vec![]),
        ],
        Outcome::Completed,
    );
    let (t, _) = responder(Pattern::RequestConfirmation, timing);
    check(
        t,
        &[
            (1, Event::Processed { accepted: true }, vec![]),
            (
                2,
                Event::Respond { code: RESP.into() },
                vec![Response(RESP.into())],
            ),
            (12, Event::Tick, vec![]),
        ],
        Outcome::Failed("no RCV for the response".into()),
    );
}

#[test]
fn mutual_obligations_complete_only_together_or_cancel_on_both_sides() {
    let timing = guaranteed(1);
    // Initiator: RCV, PRS, response → RCV; its own processing decides.
    check(
        initiator(Pattern::MutualObligations, timing),
        &[
            (1, sig(SignalKind::Rcv), vec![]),
            (2, sig(SignalKind::Prs), vec![]),
            (3, msg(RESP, RESPONDER), vec![RCV]),
            (4, Event::Processed { accepted: true }, vec![PRS]),
        ],
        Outcome::Completed,
    );
    check(
        initiator(Pattern::MutualObligations, timing),
        &[
            (3, msg(RESP, RESPONDER), vec![RCV]),
            (
                4,
                Event::Processed { accepted: false },
                vec![err(ErrorCode::DataError), Cancel],
            ),
        ],
        Outcome::Cancelled("the initiator could not process the response".into()),
    );
    check(
        initiator(Pattern::MutualObligations, timing),
        &[(1, sig(SignalKind::Err), vec![Cancel])],
        Outcome::Cancelled("the responder answered ERR".into()),
    );
    check(
        initiator(Pattern::MutualObligations, timing),
        &[
            (10, Event::Tick, vec![Resend { attempt: 1 }]),
            (20, Event::Tick, vec![Cancel]),
        ],
        Outcome::Cancelled("no RCV in time after 2 attempts".into()),
    );

    // Responder: after its response, a final window; an ERR cancels, silence completes.
    let answered = || {
        let (mut t, a) = responder(Pattern::MutualObligations, timing);
        assert_eq!(a, vec![RCV]);
        assert_eq!(t.on(Event::Processed { accepted: true }, t0()), vec![PRS]);
        assert_eq!(
            t.on(Event::Respond { code: RESP.into() }, t0()),
            vec![Response(RESP.into())]
        );
        t
    };
    check(
        answered(),
        &[(59, Event::Tick, vec![]), (60, Event::Tick, vec![])],
        Outcome::Completed,
    );
    check(
        answered(),
        &[(30, sig(SignalKind::Err), vec![Cancel])],
        Outcome::Cancelled("the initiator answered ERR to the response".into()),
    );
    check(
        answered(),
        &[
            (5, sig(SignalKind::Rcv), vec![]),
            (6, sig(SignalKind::Prs), vec![]),
        ],
        Outcome::Completed,
    );
    let (t, _) = responder(Pattern::MutualObligations, timing);
    check(
        t,
        &[
            (1, Event::Processed { accepted: true }, vec![PRS]),
            (400, Event::Tick, vec![Cancel]),
        ],
        Outcome::Cancelled("the response was not produced in time".into()),
    );
}

#[test]
fn a_finished_transaction_takes_nothing_more() {
    let timing = Timing {
        response: secs(30),
        ..Default::default()
    };
    let mut t = initiator(Pattern::QuestionResponse, timing);
    assert_eq!(t.on(msg(RESP, RESPONDER), t0()), vec![]);
    assert_eq!(
        t.on(msg(RESP, RESPONDER), t0()),
        vec![err(ErrorCode::UnexpectedMessage)]
    );
    assert_eq!(t.on(sig(SignalKind::Err), t0()), vec![]);
    assert_eq!(t.on(Event::Tick, t0() + Duration::from_secs(3600)), vec![]);
    assert_eq!(t.outcome(), &Outcome::Completed);
}

#[test]
fn patterns_refuse_parameters_that_do_not_fit() {
    let r = |p: Pattern, t: Timing, responses: bool| p.check(&t, responses);
    assert!(
        r(Pattern::Notification, Timing::default(), false)
            .unwrap_err()
            .contains("receipt")
    );
    assert!(
        r(
            Pattern::Notification,
            Timing {
                receipt: secs(1),
                ..Default::default()
            },
            true
        )
        .is_err()
    );
    assert!(
        r(Pattern::QuestionResponse, Timing::default(), true)
            .unwrap_err()
            .contains("response time")
    );
    assert!(
        r(Pattern::RequestResponse, guaranteed(0), false)
            .unwrap_err()
            .contains("names its response")
    );
    assert!(
        r(
            Pattern::MutualObligations,
            Timing {
                response: secs(1),
                ..Default::default()
            },
            true
        )
        .is_err()
    );
    assert!(
        r(
            Pattern::InformationDistribution,
            Timing {
                retries: 1,
                ..Default::default()
            },
            false
        )
        .is_err()
    );
    assert!(r(Pattern::RequestResponse, guaranteed(3), true).is_ok());
}

/// The gateway keeps an initiator as a snapshot between events: whatever happened, a restored
/// transaction answers every next event exactly as the original does.
mod snapshots {
    use super::*;
    use proptest::prelude::*;

    fn event(k: u8) -> Event {
        match k % 7 {
            0 => sig(SignalKind::Rcv),
            1 => sig(SignalKind::Prs),
            2 => sig(SignalKind::Err),
            3 => msg(RESP, RESPONDER),
            4 => msg("P.XX.01.MSG.999", RESPONDER),
            5 => Event::Processed {
                accepted: k.is_multiple_of(2),
            },
            _ => Event::Tick,
        }
    }

    const PATTERNS: [Pattern; 6] = [
        Pattern::MutualObligations,
        Pattern::QuestionResponse,
        Pattern::RequestResponse,
        Pattern::RequestConfirmation,
        Pattern::Notification,
        Pattern::InformationDistribution,
    ];

    proptest! {
        #[test]
        fn a_restored_initiator_behaves_as_the_original(
            p in 0usize..6,
            retries in 0u32..4,
            steps in proptest::collection::vec((any::<u8>(), 0u64..400), 0..24),
        ) {
            let pattern = PATTERNS[p];
            let responses = if matches!(pattern, Pattern::Notification | Pattern::InformationDistribution) {
                vec![]
            } else {
                vec![RESP.to_owned()]
            };
            let timing = guaranteed(retries);
            let mut original = Transaction::initiate(pattern, timing, &shape(&responses), t0());
            let mut at = 0;
            for (k, dt) in steps {
                at += dt;
                let snap = original.snapshot().expect("an initiator has a snapshot");
                let mut restored = Transaction::restore(pattern, timing, &shape(&responses), &snap)
                    .expect("a snapshot restores");
                prop_assert_eq!(restored.snapshot(), Some(snap));
                let now = t0() + Duration::from_secs(at);
                let (a, b) = (original.on(event(k), now), restored.on(event(k), now));
                prop_assert_eq!(a, b);
                prop_assert_eq!(original.snapshot(), restored.snapshot());
            }
        }
    }

    #[test]
    fn a_responder_is_not_the_gateways_to_keep() {
        let (t, _) = responder(Pattern::RequestResponse, guaranteed(1));
        assert_eq!(t.snapshot(), None);
    }
}
