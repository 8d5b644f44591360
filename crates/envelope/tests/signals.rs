//! Signals (RCV, PRS, ERR) and SOAP Faults: built by the crate, written, read back identical,
//! and the structural rules of each refused with the right rule.

use envelope::{
    ApplicationMessage, Body, CpAction, Envelope, ErrorCode, Fault, FaultCode, Origin,
    ParseOptions, Signal, SignalError, SignalKind, UrnUuid, parse,
};
use time::macros::datetime;

fn original() -> Envelope {
    Envelope::application(
        ApplicationMessage {
            to: "EAEU://EEC/CP/P.TS.01/P.ACT.001".parse().unwrap(),
            reply_to: "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002".parse().unwrap(),
            action: CpAction::new(
                "P.TS.01",
                "1.0.1",
                "P.TS.01.PRC.001",
                "P.TS.01.TRN.001",
                "P.TS.01.MSG.001",
            )
            .unwrap(),
            message_id: UrnUuid::new_v4(),
            relates_to: None,
            conversation_id: UrnUuid::new_v4(),
            procedure_id: Some(UrnUuid::new_v4()),
            document: "<?xml version=\"1.0\"?>\n<d:Doc xmlns:d=\"urn:EEC:R:Test:v1.0.0\">1</d:Doc>"
                .into(),
        },
        envelope::Limits::default(),
    )
    .unwrap()
}

fn round_trip(e: &Envelope) -> Envelope {
    let xml = e.to_xml();
    parse(xml.as_bytes(), &ParseOptions::new(Origin::Any))
        .unwrap_or_else(|err| panic!("{err}\n{xml}"))
}

#[test]
fn rcv_and_prs_answer_the_original_in_its_conversation() {
    let o = original();
    for kind in [SignalKind::Rcv, SignalKind::Prs] {
        let s = Envelope::signal_for(
            &o.header,
            "EAEU://EEC/CP/P.TS.01/P.ACT.001".parse().unwrap(),
            Signal::new(kind, datetime!(2026-11-23 10:00 +3)),
        )
        .unwrap();
        assert_eq!(round_trip(&s), s);
        assert_eq!(
            s.header.relates_to.as_ref().unwrap().id,
            o.header.message_id
        );
        assert_eq!(s.header.conversation_id, o.header.conversation_id);
        assert_eq!(s.header.to, o.header.reply_to);
        assert_ne!(s.header.message_id, o.header.message_id);
        assert!(
            s.to_xml()
                .contains(&format!("/P.TS.01.TRN.001/{}</wsa:Action>", kind.code()))
        );
    }
}

#[test]
fn err_signal_carries_common_and_process_codes() {
    let o = original();
    let errors = vec![
        SignalError {
            code: ErrorCode::DataError,
            description: "Поле CountryCode: значение XX отсутствует в P.CLS.019".into(),
            details: Some("line 3".into()),
            edoc_id: Some("e-1".into()),
            reference: Some("/d:Doc/d:Country".into()),
        },
        SignalError {
            code: ErrorCode::UnexpectedMessage,
            description: "<not expected> & out of order".into(),
            details: None,
            edoc_id: None,
            reference: None,
        },
        SignalError {
            code: ErrorCode::Process("P.TS.01.RULE.017".into()),
            description: "rule 17".into(),
            details: None,
            edoc_id: None,
            reference: None,
        },
    ];
    let s = Envelope::signal_for(
        &o.header,
        "EAEU://EEC/CP/P.TS.01/P.ACT.001".parse().unwrap(),
        Signal::err(datetime!(2026-11-23 07:00 UTC), errors),
    )
    .unwrap();
    assert_eq!(round_trip(&s), s);
}

#[test]
fn signal_structure_is_checked() {
    let o = original();
    let from: envelope::Address = "EAEU://EEC/CP/P.TS.01/P.ACT.001".parse().unwrap();
    assert!(
        Envelope::signal_for(
            &o.header,
            from.clone(),
            Signal::err(datetime!(2026-11-23 07:00 UTC), vec![])
        )
        .is_err()
    );
    let rcv = Envelope::signal_for(
        &o.header,
        from,
        Signal::new(SignalKind::Rcv, datetime!(2026-11-23 07:00 UTC)),
    )
    .unwrap();
    let xml = rcv.to_xml();
    let check = |x: String, rule: &str| {
        let e = parse(x.as_bytes(), &ParseOptions::new(Origin::Any)).unwrap_err();
        assert_eq!(e.rule.id(), rule, "{x}");
    };
    check(
        xml.replace("<sig:SignalCode>RCV", "<sig:SignalCode>PRS"),
        "signal",
    );
    check(
        xml.replace("2026-11-23T07:00:00Z", "2026-11-23T07:00:00"),
        "signal",
    );
    check(
        xml.replacen("<wsa:RelatesTo>", "<wsa:X>", 1)
            .replacen("</wsa:RelatesTo>", "</wsa:X>", 1),
        "header.unknown",
    );
    let no_rel = xml
        .lines()
        .filter(|l| !l.contains("RelatesTo"))
        .collect::<Vec<_>>()
        .join("\n");
    check(no_rel, "header.relates-to");
    check(
        xml.replace("<sig:SignalDetails ", "<sig:Other ")
            .replace("</sig:SignalDetails>", "</sig:Other>"),
        "signal",
    );
    let code256 = format!(
        "<sig:ValidationError><sig:Code>{}</sig:Code><sig:Description>d</sig:Description></sig:ValidationError></sig:SignalDetails>",
        "x".repeat(256)
    );
    check(
        xml.replace("<sig:SignalCode>RCV", "<sig:SignalCode>ERR")
            .replace("\n    </sig:SignalDetails>", &code256),
        "signal",
    );
    check(xml.replace("<sig:SignalCode>RCV", "<sig:SignalCode>ERR").replace("\n    </sig:SignalDetails>", "<sig:ValidationError><sig:Code>Common:Other</sig:Code><sig:Description>d</sig:Description></sig:ValidationError></sig:SignalDetails>"), "signal");
}

#[test]
fn fault_round_trip_and_rules() {
    let o = original();
    let f = Envelope::fault(
        Some(&o.header),
        Fault {
            code: FaultCode::Sender,
            subcode: Some("InvalidHeader".into()),
            reason_ru: "Неверный заголовок".into(),
            problem_message: Some(o.to_xml() + "]]> trailing"),
        },
    );
    assert_eq!(round_trip(&f), f);
    let rel = f.header.relates_to.as_ref().unwrap();
    assert_eq!(rel.id, o.header.message_id);
    assert_eq!(
        rel.relates_action.as_deref(),
        Some(o.header.action.to_string().as_str())
    );
    let Body::Fault(body) = &round_trip(&f).body else {
        panic!()
    };
    assert_eq!(
        body.problem_message.as_deref(),
        Some((o.to_xml() + "]]> trailing").as_str())
    );

    let xml = f.to_xml();
    let check = |x: String, rule: &str| {
        let e = parse(x.as_bytes(), &ParseOptions::new(Origin::Any)).unwrap_err();
        assert_eq!(e.rule.id(), rule, "{x}");
    };
    check(xml.replace("xml:lang=\"ru\"", "xml:lang=\"en\""), "fault");
    check(
        xml.replace(
            "</soap:Text></soap:Reason>",
            "</soap:Text><soap:Text xml:lang=\"ru\">ещё</soap:Text></soap:Reason>",
        ),
        "fault",
    );
    check(
        xml.replace(
            "</soap:Text></soap:Reason>",
            "</soap:Text><soap:Text xml:lang=\"en\">bad header</soap:Text></soap:Reason>",
        ),
        "fault",
    );
    check(
        xml.replace(" int:RelatesAction=", " int:OtherAttr="),
        "fault",
    );
    check(xml.replace("soap:Sender", "soap:Client"), "fault");
    check(
        xml.replace(
            "<soap:Header>",
            "<soap:Header><wsa:ReplyTo><wsa:Address>EAEU://KZ/CA/x</wsa:Address></wsa:ReplyTo>",
        ),
        "header.from-fault-to",
    );
    check(
        xml.replace(
            "<soap:Header>",
            "<soap:Header><wsa:FaultTo><wsa:Address>EAEU://KZ/CA/x</wsa:Address></wsa:FaultTo>",
        ),
        "header.from-fault-to",
    );
}

#[test]
fn fault_without_a_readable_problem_has_no_relates_to() {
    let f = Envelope::fault(
        None,
        Fault::for_error(
            &envelope::EnvelopeError::new(envelope::Rule::XmlMalformed, "bad"),
            Some(b"<oops"),
        ),
    );
    assert!(f.header.relates_to.is_none());
    assert_eq!(round_trip(&f), f);
}

/// The fuzz seeds stay envelopes the parser accepts (`WRITE_FUZZ_SEEDS=1` writes fresh ones).
#[test]
fn fuzz_seeds_parse() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/envelope_parse");
    if std::env::var("WRITE_FUZZ_SEEDS").is_ok() {
        let o = original();
        let from: envelope::Address = "EAEU://EEC/CP/P.TS.01/P.ACT.001".parse().unwrap();
        let err = Signal::err(
            datetime!(2026-11-23 07:00 UTC),
            vec![SignalError {
                code: ErrorCode::DataError,
                description: "Поле не заполнено".into(),
                details: Some("d".into()),
                edoc_id: Some("e".into()),
                reference: Some("/a/b".into()),
            }],
        );
        let seeds = [
            (
                "signal-rcv.xml",
                Envelope::signal_for(
                    &o.header,
                    from.clone(),
                    Signal::new(SignalKind::Rcv, datetime!(2026-11-23 10:00 +3)),
                )
                .unwrap(),
            ),
            (
                "signal-err.xml",
                Envelope::signal_for(&o.header, from, err).unwrap(),
            ),
            (
                "fault.xml",
                Envelope::fault(
                    Some(&o.header),
                    Fault {
                        code: FaultCode::Sender,
                        subcode: Some("InvalidHeader".into()),
                        reason_ru: "Неверный заголовок".into(),
                        problem_message: Some(o.to_xml()),
                    },
                ),
            ),
        ];
        for (name, e) in seeds {
            std::fs::write(dir.join(name), e.to_xml()).unwrap();
        }
    }
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let path = f.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let result = parse(&bytes, &ParseOptions::new(Origin::Any));
        // `regression-*` seeds are inputs the fuzzer once broke the parser with; they may be
        // refused, they must not panic (reaching here is the check).
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("regression-") {
            result.unwrap_or_else(|e| panic!("seed {name}: {e}"));
        }
        n += 1;
    }
    assert!(n >= 5, "{n} seeds");
}
