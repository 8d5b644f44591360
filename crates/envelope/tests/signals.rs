//! Signals (RCV, PRS, ERR) and SOAP Faults: built by the crate, written, read back identical,
//! and the structural rules of each refused with the right rule.

use envelope::{
    ApplicationMessage, Body, CpAction, Envelope, ErrorCode, Fault, FaultCode, Origin,
    ParseOptions, Signal, SignalError, SignalKind, Subcode, UrnUuid, parse,
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
        assert!(s.to_xml().contains(&format!(
            "/P.TS.01.TRN.001/P.MSG.{}</wsa:Action>",
            kind.code()
        )));
    }
}

#[test]
fn err_signal_carries_common_and_process_codes() {
    let o = original();
    let errors = vec![
        SignalError {
            code: ErrorCode::DataError,
            description: "Поле CountryCode: значение XX отсутствует в P.CLS.019".into(),
            details: Some("line 3 (at /d:Doc/d:Country, EDocId e-1)".into()),
        },
        SignalError {
            code: ErrorCode::UnexpectedMessage,
            description: "<not expected> & out of order".into(),
            details: None,
        },
        SignalError {
            code: ErrorCode::Process("P.TS.01.RULE.017".into()),
            description: "rule 17".into(),
            details: None,
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
    // The body must be the element of the Action's signal.
    check(
        xml.replace("/P.MSG.RCV</wsa:Action>", "/P.MSG.PRS</wsa:Action>"),
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
        xml.replace("<sig:DeliveryReceipt ", "<sig:Other ")
            .replace("</sig:DeliveryReceipt>", "</sig:Other>"),
        "signal",
    );
    // Another namespace than the federation's is not a signal.
    check(
        xml.replace("urn:EEC:signal:v1.0", "urn:EEC:Interaction:Signal:v1.0"),
        "signal",
    );
    // An Error in a receipt, a code of 256 characters, an unknown Common: code.
    let as_err = |x: &str| {
        x.replace("/P.MSG.RCV</wsa:Action>", "/P.MSG.ERR</wsa:Action>")
            .replace("sig:DeliveryReceipt", "sig:ValidationError")
    };
    let with_error = |code: &str| {
        format!(
            "<sig:Error><sig:Code>{code}</sig:Code><sig:Description>d</sig:Description></sig:Error></sig:DeliveryReceipt>"
        )
    };
    check(
        xml.replace(
            "\n    </sig:DeliveryReceipt>",
            &with_error("Common:DataError"),
        ),
        "signal",
    );
    check(
        as_err(&xml.replace(
            "\n    </sig:DeliveryReceipt>",
            &with_error(&"x".repeat(256)),
        )),
        "signal",
    );
    check(
        as_err(&xml.replace("\n    </sig:DeliveryReceipt>", &with_error("Common:Other"))),
        "signal",
    );
    // An ERR with no Error at all.
    check(as_err(&xml), "signal");
    // The same ERR with an Error is read.
    let ok = as_err(&xml.replace(
        "\n    </sig:DeliveryReceipt>",
        &with_error("Common:DataError"),
    ));
    parse(ok.as_bytes(), &ParseOptions::new(Origin::Any)).unwrap_or_else(|e| panic!("{e}\n{ok}"));
}

/// Appendix 5 as written: RCV, PRS and ERR bodies with bare-UUID SignalIds, parsed, and
/// written back in the same form.
#[test]
fn appendix_5_signal_fixtures_are_read_and_written() {
    let o = original();
    let from: envelope::Address = "EAEU://EEC/CP/P.TS.01/P.ACT.001".parse().unwrap();
    for (kind, body) in [
        (
            SignalKind::Rcv,
            "<sig:DeliveryReceipt xmlns:sig=\"urn:EEC:signal:v1.0\"><sig:SignalId>0f3c2b1a-8d4e-4f6a-9b7c-5d2e1f0a3b4c</sig:SignalId><sig:DateTime>2026-11-23T10:00:00+03:00</sig:DateTime></sig:DeliveryReceipt>",
        ),
        (
            SignalKind::Prs,
            "<ProcessingReceipt xmlns=\"urn:EEC:signal:v1.0\"><SignalId>0f3c2b1a-8d4e-4f6a-9b7c-5d2e1f0a3b4c</SignalId><DateTime>2026-11-23T07:00:00Z</DateTime></ProcessingReceipt>",
        ),
        (
            SignalKind::Err,
            "<s:ValidationError xmlns:s=\"urn:EEC:signal:v1.0\"><s:SignalId>urn:uuid:0f3c2b1a-8d4e-4f6a-9b7c-5d2e1f0a3b4c</s:SignalId><s:DateTime>2026-11-23T07:00:00Z</s:DateTime><s:Error><s:Code>Common:DataError</s:Code><s:Description>Поле не заполнено</s:Description><s:Details>[R.1] empty (at /a)</s:Details></s:Error><s:Error><s:Code>P.TS.01.RULE.017</s:Code><s:Description>правило 17</s:Description></s:Error></s:ValidationError>",
        ),
    ] {
        let ours = Envelope::signal_for(
            &o.header,
            from.clone(),
            Signal::new(kind, datetime!(2026-11-23 07:00 UTC)),
        )
        .unwrap_or_else(|_| {
            Envelope::signal_for(
                &o.header,
                from.clone(),
                Signal::err(
                    datetime!(2026-11-23 07:00 UTC),
                    vec![SignalError {
                        code: ErrorCode::DataError,
                        description: "x".into(),
                        details: None,
                    }],
                ),
            )
            .unwrap()
        });
        let xml = ours.to_xml();
        let (a, b) = (xml.find("<sig:").unwrap(), xml.rfind("</sig:").unwrap());
        let end = b + xml[b..].find('>').unwrap() + 1;
        let theirs = format!("{}{body}{}", &xml[..a], &xml[end..]);
        let read = parse(theirs.as_bytes(), &ParseOptions::new(Origin::Any))
            .unwrap_or_else(|e| panic!("{e}\n{theirs}"));
        let Body::Signal(sig) = &read.body else {
            panic!("not a signal")
        };
        assert_eq!(sig.kind, kind);
        assert_eq!(
            sig.signal_id.uuid().to_string(),
            "0f3c2b1a-8d4e-4f6a-9b7c-5d2e1f0a3b4c"
        );
        if kind == SignalKind::Err {
            assert_eq!(sig.errors.len(), 2);
            assert_eq!(
                sig.errors[1].code,
                ErrorCode::Process("P.TS.01.RULE.017".into())
            );
        }
        // Written back: the same signal, with a bare SignalId.
        let again = read.to_xml();
        assert!(
            again.contains("<sig:SignalId>0f3c2b1a-8d4e-4f6a-9b7c-5d2e1f0a3b4c</sig:SignalId>"),
            "{again}"
        );
        assert_eq!(round_trip(&read), read);
    }
}

#[test]
fn fault_round_trip_and_rules() {
    let o = original();
    let f = Envelope::fault(
        Some(&o.header),
        Fault {
            code: FaultCode::Sender,
            subcode: Some(Subcode::InvalidAddressingHeader),
            reason_ru: "Неверный заголовок".into(),
            reasons: vec![("en".into(), "Invalid header".into())],
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
    // Item 75: one text per language, one of them Russian.
    check(xml.replace("xml:lang=\"ru\"", "xml:lang=\"de\""), "fault");
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
            "</soap:Text><soap:Text xml:lang=\"en\">again</soap:Text></soap:Reason>",
        ),
        "fault",
    );
    // Table 8: a subcode outside it, or with the other code, is refused.
    check(
        xml.replace("wsa:InvalidAddressingHeader", "wsa:DuplicateMessageID"),
        "fault",
    );
    check(xml.replace("soap:Sender", "soap:Receiver"), "fault");
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

/// Table 8 as written by another implementation: each subcode read, with its code, and the
/// Russian and English texts kept; written back in the same form.
#[test]
fn table_8_fault_fixtures_are_read_and_written() {
    let o = original();
    let ours = Envelope::fault(
        Some(&o.header),
        Fault::for_error(
            &envelope::EnvelopeError::new(envelope::Rule::To, "bad"),
            None,
        ),
    );
    let xml = ours.to_xml();
    for (qname, code) in [
        ("int:InvalidHeader", "soap:Sender"),
        ("int:DataError", "soap:Sender"),
        ("int:InternalError", "soap:Receiver"),
        ("wsa:InvalidAddressingHeader", "soap:Sender"),
        ("wsa:MessageAddressingHeaderRequired", "soap:Sender"),
        ("wsa:DestinationUnreachable", "soap:Sender"),
        ("wsa:ActionNotSupported", "soap:Sender"),
        ("wsa:EndpointUnavailable", "soap:Receiver"),
    ] {
        let theirs = xml
            .replace("wsa:InvalidAddressingHeader", qname)
            .replace("soap:Sender", code);
        let read = parse(theirs.as_bytes(), &ParseOptions::new(Origin::Any))
            .unwrap_or_else(|e| panic!("{qname}: {e}"));
        let Body::Fault(f) = &read.body else { panic!() };
        assert_eq!(f.subcode.map(Subcode::qname).as_deref(), Some(qname));
        assert_eq!(f.reasons.len(), 1, "the English text is kept");
        assert_eq!(read.to_xml(), theirs, "{qname} written back as read");
    }
    // Missing headers and wrong ones get the subcodes table 8 gives them.
    let missing_to = envelope::EnvelopeError::missing(envelope::Rule::To, "no To");
    let missing_conv = envelope::EnvelopeError::missing(envelope::Rule::ConversationId, "none");
    let wrong_to = envelope::EnvelopeError::new(envelope::Rule::To, "bad To");
    let broken = envelope::EnvelopeError::new(envelope::Rule::XmlMalformed, "bad");
    assert_eq!(
        [&missing_to, &missing_conv, &wrong_to, &broken].map(|e| Subcode::for_error(e).qname()),
        [
            "wsa:MessageAddressingHeaderRequired",
            "int:InvalidHeader",
            "wsa:InvalidAddressingHeader",
            "int:DataError"
        ]
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
                        subcode: Some(Subcode::MessageAddressingHeaderRequired),
                        reason_ru: "Неверный заголовок".into(),
                        reasons: vec![("en".into(), "Missing header".into())],
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
