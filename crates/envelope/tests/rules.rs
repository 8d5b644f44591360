//! Every header rule of Decision No. 5 (reference §1.2–§1.6) and every XML safety rule, each
//! as an envelope a sender could really write and the verdict a receiver must give.

use envelope::{Origin, ParseOptions, parse};

const APP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:int="urn:EEC:Interaction:v1.0">
  <soap:Header>
    <wsa:To>EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>
    <wsa:ReplyTo><wsa:Address>EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002</wsa:Address></wsa:ReplyTo>
    <wsa:Action>int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.002/P.TS.01.MSG.002</wsa:Action>
    <wsa:MessageID>urn:uuid:0b7e6a4c-51a5-4a1e-9d6e-2f3b8c9d0e1f</wsa:MessageID>
    <int:ConversationID>urn:uuid:1c8f7b5d-62b6-4b2f-8e7f-3a4c9d0e1f20</int:ConversationID>
    <int:ProcedureID>urn:uuid:2d9a8c6e-73c7-4c30-9f80-4b5d0e1f2031</int:ProcedureID>
  </soap:Header>
  <soap:Body>
    <tr:ConformityDocDetails xmlns:tr="urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1"><tr:Id>KZ-1</tr:Id></tr:ConformityDocDetails>
  </soap:Body>
</soap:Envelope>"#;

const INTEGRATION: &str = "<int:Integration><int:TrackID>urn:uuid:3e0b9d7f-84d8-4d41-a091-5c6e1f203142</int:TrackID><int:AcceptTime>2026-01-01T10:00:00Z</int:AcceptTime></int:Integration>";

/// Parses `xml` as sent by `origin` and compares the verdict with `expect`: `"ok"` or the id
/// of the rule that must refuse it.
fn check(origin: Origin, xml: &str, expect: &str) {
    assert_eq!(
        verdict(origin, xml.as_bytes()),
        expect,
        "verdict for:\n{xml}"
    );
}

fn verdict(origin: Origin, bytes: &[u8]) -> String {
    match parse(bytes, &ParseOptions::new(origin)) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.rule.id().to_owned(),
    }
}

fn is(xml: &str, expect: &str) {
    check(Origin::InformationSystem, xml, expect)
}

fn swap(from: &str, to: &str) -> String {
    assert!(APP.contains(from), "fixture lacks {from}");
    APP.replacen(from, to, 1)
}

fn header_add(extra: &str) -> String {
    APP.replacen("</soap:Header>", &format!("{extra}</soap:Header>"), 1)
}

#[test]
fn a_well_formed_application_message_is_accepted() {
    is(APP, "ok");
}

#[test]
fn soap_version_and_structure() {
    is(
        &APP.replace(
            "http://www.w3.org/2003/05/soap-envelope",
            "http://schemas.xmlsoap.org/soap/envelope/",
        ),
        "soap.version",
    );
    is("<a:Envelope xmlns:a=\"urn:x\"/>", "soap.version");
    is(
        &APP.replace("<soap:Header>", "<soap:Header_>")
            .replace("</soap:Header>", "</soap:Header_>"),
        "soap.structure",
    );
    let no_header = {
        let start = APP.find("<soap:Header>").unwrap();
        let end = APP.find("</soap:Header>").unwrap() + "</soap:Header>".len();
        format!("{}{}", &APP[..start], &APP[end..])
    };
    is(&no_header, "soap.structure");
    is(
        &APP.replace("</soap:Body>", "</soap:Body><soap:Body/>"),
        "soap.structure",
    );
    is(
        &APP.replace("<soap:Body>", "<soap:Body>stray text"),
        "soap.structure",
    );
}

#[test]
fn body_carries_exactly_one_e_document() {
    is(
        &APP.replace(
            "</tr:ConformityDocDetails>",
            "</tr:ConformityDocDetails><x:Second xmlns:x=\"urn:x\"/>",
        ),
        "body.one-document",
    );
    let empty = {
        let start = APP.find("<tr:ConformityDocDetails").unwrap();
        let end =
            APP.find("</tr:ConformityDocDetails>").unwrap() + "</tr:ConformityDocDetails>".len();
        format!("{}{}", &APP[..start], &APP[end..])
    };
    is(&empty, "body.one-document");
}

#[test]
fn wsa_to_is_mandatory_and_a_logical_address() {
    is(
        &swap("<wsa:To>EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>", ""),
        "header.to",
    );
    is(
        &swap(
            "EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>",
            "http://example.org/</wsa:To>",
        ),
        "header.to",
    );
    // P.ACT.001 is the Commission: only in segment EEC.
    is(
        &swap(
            "EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>",
            "EAEU://RU/CP/P.TS.01/P.ACT.001</wsa:To>",
        ),
        "header.to",
    );
    // A participant of another process in a P.TS.01 address.
    is(
        &swap(
            "EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>",
            "EAEU://RU/CP/P.TS.01/P.MM.01.ACT.001</wsa:To>",
        ),
        "header.to",
    );
    is(
        &swap(
            "EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>",
            "EAEU://kz/CA/customs</wsa:To>",
        ),
        "header.to",
    );
    is(
        &swap(
            "EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>",
            "EAEU://RU/XX/customs</wsa:To>",
        ),
        "header.to",
    );
    is(
        &swap(
            "EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>",
            "EAEU://RU/CA/customs</wsa:To>",
        ),
        "ok",
    );
    is(
        &swap(
            "EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>",
            "EAEU://EEC/SR/gate</wsa:To>",
        ),
        "ok",
    );
    is(
        &swap(
            "EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>",
            "EAEU://RU/CP/P.TS.01/P.TS.01.ACT.002/rosaccreditation</wsa:To>",
        ),
        "ok",
    );
}

#[test]
fn reply_to_is_mandatory_in_application_messages() {
    is(
        &swap(
            "<wsa:ReplyTo><wsa:Address>EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002</wsa:Address></wsa:ReplyTo>",
            "",
        ),
        "header.reply-to",
    );
    is(
        &swap(
            "<wsa:Address>EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002</wsa:Address>",
            "",
        ),
        "header.reply-to",
    );
    is(
        &swap(
            "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002</wsa:Address>",
            "KZ</wsa:Address>",
        ),
        "header.reply-to",
    );
}

#[test]
fn from_and_fault_to_are_forbidden() {
    is(
        &header_add("<wsa:From><wsa:Address>EAEU://KZ/CA/x</wsa:Address></wsa:From>"),
        "header.from-fault-to",
    );
    is(
        &header_add("<wsa:FaultTo><wsa:Address>EAEU://KZ/CA/x</wsa:Address></wsa:FaultTo>"),
        "header.from-fault-to",
    );
}

#[test]
fn message_id_is_a_mandatory_urn_uuid() {
    is(
        &swap(
            "<wsa:MessageID>urn:uuid:0b7e6a4c-51a5-4a1e-9d6e-2f3b8c9d0e1f</wsa:MessageID>",
            "",
        ),
        "header.message-id",
    );
    is(
        &swap(
            "urn:uuid:0b7e6a4c-51a5-4a1e-9d6e-2f3b8c9d0e1f</wsa:MessageID>",
            "0b7e6a4c-51a5-4a1e-9d6e-2f3b8c9d0e1f</wsa:MessageID>",
        ),
        "header.message-id",
    );
    is(
        &swap(
            "urn:uuid:0b7e6a4c-51a5-4a1e-9d6e-2f3b8c9d0e1f</wsa:MessageID>",
            "urn:uuid:0b7e6a4c51a54a1e9d6e2f3b8c9d0e1f</wsa:MessageID>",
        ),
        "header.message-id",
    );
    is(
        &swap(
            "urn:uuid:0b7e6a4c-51a5-4a1e-9d6e-2f3b8c9d0e1f</wsa:MessageID>",
            "urn:uuid:0B7E6A4C-51A5-4A1E-9D6E-2F3B8C9D0E1F</wsa:MessageID>",
        ),
        "ok",
    );
}

#[test]
fn relates_to_is_a_urn_uuid_and_relates_action_is_for_faults() {
    is(
        &header_add("<wsa:RelatesTo>urn:uuid:4f1cae80-95e9-4e52-b1a2-6d7f20314253</wsa:RelatesTo>"),
        "ok",
    );
    is(
        &header_add("<wsa:RelatesTo>msg-1</wsa:RelatesTo>"),
        "header.relates-to",
    );
    is(
        &header_add(
            "<wsa:RelatesTo int:RelatesAction=\"int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.001/P.TS.01.MSG.001\">urn:uuid:4f1cae80-95e9-4e52-b1a2-6d7f20314253</wsa:RelatesTo>",
        ),
        "header.relates-to",
    );
}

#[test]
fn action_grammar_and_code_consistency() {
    let a = "int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.002/P.TS.01.MSG.002";
    is(
        &swap(&format!("<wsa:Action>{a}</wsa:Action>"), ""),
        "header.action",
    );
    for (bad, rule) in [
        ("http://example.org/submit", "header.action"),
        (
            "int://CP/P.TS.01/1.0/P.TS.01.PRC.001/P.TS.01.TRN.002/P.TS.01.MSG.002",
            "header.action",
        ),
        (
            "int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.002",
            "header.action",
        ),
        (
            "int://CP/PTS01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.002/P.TS.01.MSG.002",
            "header.action",
        ),
        (
            "int://CP/P.TS.01/1.0.1/P.XX.01.PRC.001/P.TS.01.TRN.002/P.TS.01.MSG.002",
            "header.action-consistency",
        ),
        (
            "int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.MM.01.TRN.002/P.TS.01.MSG.002",
            "header.action-consistency",
        ),
        (
            "int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.002/P.SP.02.MSG.002",
            "header.action-consistency",
        ),
        (
            "int://CP/P.TS.01/1.0.1/P.TS.01.PRC.1/P.TS.01.TRN.002/P.TS.01.MSG.002",
            "header.action-consistency",
        ),
    ] {
        is(&swap(a, bad), rule);
    }
}

#[test]
fn conversation_and_procedure_ids() {
    is(
        &swap(
            "<int:ConversationID>urn:uuid:1c8f7b5d-62b6-4b2f-8e7f-3a4c9d0e1f20</int:ConversationID>",
            "",
        ),
        "header.conversation-id",
    );
    is(
        &swap(
            "urn:uuid:1c8f7b5d-62b6-4b2f-8e7f-3a4c9d0e1f20</int:ConversationID>",
            "conv-1</int:ConversationID>",
        ),
        "header.conversation-id",
    );
    is(
        &swap(
            "urn:uuid:2d9a8c6e-73c7-4c30-9f80-4b5d0e1f2031</int:ProcedureID>",
            "proc</int:ProcedureID>",
        ),
        "header.procedure-id",
    );
    is(
        &swap(
            "<int:ProcedureID>urn:uuid:2d9a8c6e-73c7-4c30-9f80-4b5d0e1f2031</int:ProcedureID>",
            "",
        ),
        "ok",
    );
}

#[test]
fn integration_is_written_only_by_the_platform() {
    let stamped = header_add(INTEGRATION);
    check(
        Origin::InformationSystem,
        &stamped,
        "header.integration-reserved",
    );
    check(Origin::Platform, &stamped, "ok");
    check(Origin::Platform, APP, "header.integration-missing");
    check(
        Origin::Platform,
        &stamped.replace("2026-01-01T10:00:00Z", "2026-01-01T10:00:00+03:00"),
        "header.integration-value",
    );
    check(
        Origin::Platform,
        &stamped.replace("2026-01-01T10:00:00Z", "2026-01-01T10:00:00"),
        "header.integration-value",
    );
    check(
        Origin::Platform,
        &stamped.replace(
            "<int:TrackID>urn:uuid:3e0b9d7f-84d8-4d41-a091-5c6e1f203142",
            "<int:TrackID>track-1",
        ),
        "header.integration-value",
    );
}

#[test]
fn headers_appear_once_and_unknown_ones_are_refused() {
    is(
        &header_add("<wsa:To>EAEU://EEC/CP/P.TS.01/P.ACT.001</wsa:To>"),
        "header.duplicate",
    );
    is(
        &header_add(
            "<int:ConversationID>urn:uuid:1c8f7b5d-62b6-4b2f-8e7f-3a4c9d0e1f20</int:ConversationID>",
        ),
        "header.duplicate",
    );
    is(
        &header_add("<int:Priority>1</int:Priority>"),
        "header.unknown",
    );
    is(&header_add("<wsa:ReferenceParameters/>"), "header.unknown");
    is(
        &header_add("<x:Security xmlns:x=\"urn:national\" soap:mustUnderstand=\"true\"/>"),
        "header.unknown",
    );
    // A national header that need not be understood is ignored, as SOAP 1.2 allows.
    is(
        &header_add("<x:Trace xmlns:x=\"urn:national\">42</x:Trace>"),
        "ok",
    );
}

#[test]
fn any_order_of_headers_is_accepted() {
    let a = "<wsa:Action>int://CP/P.TS.01/1.0.1/P.TS.01.PRC.001/P.TS.01.TRN.002/P.TS.01.MSG.002</wsa:Action>";
    let moved = header_add(a).replacen(&format!("{a}\n"), "", 1);
    assert!(moved.find(a).unwrap() > moved.find("int:ProcedureID").unwrap());
    is(&moved, "ok");
}

#[test]
fn xml_safety() {
    is(
        &format!(
            "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
            APP.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        ),
        "xml.dtd",
    );
    is(
        &APP.replace("<tr:Id>KZ-1</tr:Id>", "<tr:Id>&e;</tr:Id>"),
        "xml.entity",
    );
    is(
        &APP.replace("<tr:Id>KZ-1</tr:Id>", "<tr:Id>&lt;&#x41;&amp;</tr:Id>"),
        "ok",
    );
    is(
        &APP.replace("<soap:Body>", "<soap:Body><?php echo 1 ?>"),
        "xml.pi",
    );
    is(&APP.replace("</soap:Envelope>", ""), "xml.malformed");
    is(&APP.replace("</tr:Id>", "</tr:Idx>"), "xml.malformed");
    is(
        &APP.replace("encoding=\"UTF-8\"", "encoding=\"windows-1251\""),
        "xml.malformed",
    );
    assert_eq!(
        verdict(Origin::Any, b"\xff\xfe<soap:Envelope/>"),
        "xml.malformed"
    );
    let deep = format!("{}{}", "<d>".repeat(200), "</d>".repeat(200));
    is(&APP.replace("<tr:Id>KZ-1</tr:Id>", &deep), "xml.too-deep");
    let big = APP.replace("KZ-1", &"x".repeat(17 * 1024 * 1024));
    is(&big, "xml.too-large");
}

#[test]
fn e_document_keeps_namespaces_it_inherits_from_the_envelope() {
    let xml = APP
        .replace("xmlns:int=\"urn:EEC:Interaction:v1.0\"", "xmlns:int=\"urn:EEC:Interaction:v1.0\" xmlns:tr=\"urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1\"")
        .replace(" xmlns:tr=\"urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1\"><tr:Id>", "><tr:Id>");
    let env = parse(xml.as_bytes(), &ParseOptions::new(Origin::Any)).unwrap();
    let envelope::Body::Document(d) = &env.body else {
        panic!("not a document")
    };
    assert_eq!(
        d,
        "<tr:ConformityDocDetails xmlns:tr=\"urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1\"><tr:Id>KZ-1</tr:Id></tr:ConformityDocDetails>"
    );
}

/// Found by the fuzzer: a UTF-8 byte-order mark shifted every position by three bytes and cut
/// the end off the e-document.
#[test]
fn a_byte_order_mark_changes_nothing() {
    let with_bom = format!("\u{FEFF}{APP}");
    let a = parse(APP.as_bytes(), &ParseOptions::new(Origin::Any)).unwrap();
    let b = parse(with_bom.as_bytes(), &ParseOptions::new(Origin::Any)).unwrap();
    assert_eq!(a, b);
    let doc = "\u{FEFF}<d:Doc xmlns:d=\"urn:x\">1</d:Doc>";
    assert_eq!(
        envelope::document_text(doc, envelope::Limits::default()).unwrap(),
        "<d:Doc xmlns:d=\"urn:x\">1</d:Doc>"
    );
}

/// Found by the fuzzer: a code holding a multibyte character panicked while its shape was
/// checked; outside bytes must get a refusal, never a panic.
#[test]
fn codes_with_multibyte_characters_are_refused_not_panicked_on() {
    for bad in [
        "P.TS.01.PR\u{FEFF}01",
        "P.TS.01.PRC.0\u{430}1",
        "\u{420}.TS.01.PRC.001",
    ] {
        let xml = swap(
            "P.TS.01.PRC.001/P.TS.01.TRN.002",
            &format!("{bad}/P.TS.01.TRN.002"),
        );
        let e = parse(xml.as_bytes(), &ParseOptions::new(Origin::Any)).unwrap_err();
        assert!(e.rule.id().starts_with("header.action"), "{bad}: {e}");
    }
    assert!(envelope::Address::parse("EAEU://KZ/CP/P.TS.01/P.TS.01.AC\u{FEFF}2").is_err());
}

/// A Fault quotes a short message whole, and a long one only in part, cut at a character and
/// saying how long it was.
#[test]
fn a_fault_quotes_at_most_a_bounded_excerpt() {
    assert_eq!(envelope::quote("короткое".as_bytes()), "короткое");
    let long = "Ә".repeat(envelope::MAX_QUOTE);
    let q = envelope::quote(long.as_bytes());
    assert!(q.len() <= envelope::MAX_QUOTE + 64, "{}", q.len());
    assert!(q.starts_with("ӘӘ") && !q.contains('\u{FFFD}'));
    assert!(q.ends_with(&format!("({} bytes in all)", long.len())));
}
