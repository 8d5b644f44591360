//! Property: for any envelope the crate can build, parse(write(e)) == e, and writing is stable.

use envelope::{
    Action, ApplicationMessage, CpAction, Envelope, ErrorCode, Fault, Origin, ParseOptions, Signal,
    SignalError, SignalKind, Subcode, UrnUuid, parse,
};
use proptest::prelude::*;
use time::OffsetDateTime;

fn uuid() -> impl Strategy<Value = UrnUuid> {
    any::<u128>().prop_map(|n| UrnUuid::from_uuid(uuid::Uuid::from_u128(n)))
}

fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["AM", "BY", "KZ", "KG", "RU"])
}

fn text() -> impl Strategy<Value = String> {
    // Printable text including markup characters and Cyrillic, never control characters.
    "[a-zA-Zа-яА-ЯәғқңөұүһіӘҒҚҢӨҰҮҺІ0-9 <>&\"'.,;:!?/-]{1,40}"
        .prop_filter("non-blank", |s| !s.trim().is_empty())
}

fn time() -> impl Strategy<Value = OffsetDateTime> {
    (1_600_000_000i64..2_000_000_000, 0u32..1_000_000, -12i8..=12).prop_map(|(s, us, h)| {
        OffsetDateTime::from_unix_timestamp(s)
            .unwrap()
            .replace_microsecond(us)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(h, 0, 0).unwrap())
    })
}

prop_compose! {
    fn application()(seg in segment(), n in 1u16..999, t in 1u16..999, m in 1u16..999,
                     ver in (0u8..10, 0u8..10, 0u8..10), mid in uuid(), conv in uuid(),
                     proc_id in proptest::option::of(uuid()), rel in proptest::option::of(uuid()),
                     content in text(), stamp in proptest::option::of((uuid(), time()))) -> Envelope {
        let action = CpAction::new("P.TS.01", &format!("{}.{}.{}", ver.0, ver.1, ver.2),
            &format!("P.TS.01.PRC.{n:03}"), &format!("P.TS.01.TRN.{t:03}"), &format!("P.TS.01.MSG.{m:03}")).unwrap();
        let doc = format!("<d:Doc xmlns:d=\"urn:EEC:R:Test:v1.0.0\" a=\"{}\">{}</d:Doc>",
            quick_escape(&content), quick_escape(&content));
        let mut e = Envelope::application(ApplicationMessage {
            to: "EAEU://EEC/CP/P.TS.01/P.ACT.001".parse().unwrap(),
            reply_to: format!("EAEU://{seg}/CP/P.TS.01/P.TS.01.ACT.002").parse().unwrap(),
            action, message_id: mid, relates_to: rel, conversation_id: conv, procedure_id: proc_id, document: doc,
        }, envelope::Limits::default()).unwrap();
        if let Some((track, at)) = stamp { e.stamp(track, at); }
        e
    }
}

fn quick_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::UnexpectedMessage),
        Just(ErrorCode::DataError),
        Just(ErrorCode::FatalError),
        "[A-Z]\\.[A-Z]{2}\\.[0-9]{2}\\.RULE\\.[0-9]{3}".prop_map(ErrorCode::Process),
    ]
}

fn signal_error() -> impl Strategy<Value = SignalError> {
    (error_code(), text(), proptest::option::of(text())).prop_map(|(code, description, details)| {
        SignalError {
            code,
            description,
            details,
        }
    })
}

fn signal() -> impl Strategy<Value = Envelope> {
    (
        application(),
        prop::sample::select(vec![SignalKind::Rcv, SignalKind::Prs, SignalKind::Err]),
        time(),
        prop::collection::vec(signal_error(), 1..4),
    )
        .prop_map(|(orig, kind, at, errors)| {
            let mut s = Signal::new(kind, at);
            if kind == SignalKind::Err {
                s.errors = errors;
            }
            Envelope::signal_for(
                &orig.header,
                "EAEU://EEC/CP/P.TS.01/P.ACT.001".parse().unwrap(),
                s,
            )
            .unwrap()
        })
}

fn fault() -> impl Strategy<Value = Envelope> {
    (
        application(),
        prop::sample::select(vec![
            Subcode::InvalidHeader,
            Subcode::DataError,
            Subcode::InternalError,
            Subcode::InvalidAddressingHeader,
            Subcode::MessageAddressingHeaderRequired,
            Subcode::DestinationUnreachable,
            Subcode::ActionNotSupported,
            Subcode::EndpointUnavailable,
        ]),
        any::<bool>(),
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(orig, subcode, related, reason, english, problem)| {
            Envelope::fault(
                related.then_some(&orig.header),
                Fault {
                    code: subcode.code(),
                    subcode: Some(subcode),
                    reason_ru: reason,
                    reasons: english.into_iter().map(|t| ("en".to_owned(), t)).collect(),
                    problem_message: problem,
                },
            )
        })
}

proptest! {
    #[test]
    fn parse_write_round_trip(e in prop_oneof![application(), signal(), fault()]) {
        let xml = e.to_xml();
        let back = parse(xml.as_bytes(), &ParseOptions::new(Origin::Any)).map_err(|err| TestCaseError::fail(format!("{err}\n{xml}")))?;
        prop_assert_eq!(&back, &e);
        prop_assert_eq!(back.to_xml(), xml);
    }

    #[test]
    fn action_text_round_trip(n in 1u16..999, t in 1u16..999, m in 1u16..999) {
        let s = format!("int://CP/P.SP.02/1.0.0/P.SP.02.PRC.{n:03}/P.SP.02.TRN.{t:03}/P.SP.02.MSG.{m:03}");
        prop_assert_eq!(Action::parse(&s).unwrap().to_string(), s);
    }

    #[test]
    fn parser_never_panics_on_mutated_envelopes(e in application(), cut in 0usize..4000, junk in "[<>&;:/a-z\"' =!\\[\\]-]{0,8}") {
        let xml = e.to_xml();
        let cut = cut.min(xml.len());
        let mut s = xml.clone();
        if s.is_char_boundary(cut) { s.insert_str(cut, &junk); }
        let _ = parse(s.as_bytes(), &ParseOptions::new(Origin::Any));
    }
}
