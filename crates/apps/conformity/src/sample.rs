//! Sample P.TS.01 messages, the one builder for the demo, the benchmarks and the tests: a
//! registration (MSG.001 of TRN.001) to any participant, and a certificate made from the
//! package's shipped sample with another state's country code and number.

use std::path::Path;

use adapter::Submission;

/// A P.TS.01 registration (MSG.001) to `to` carrying `body`.
pub fn registration(to: &str, body: String) -> Submission {
    Submission {
        to: to.into(),
        process: "P.TS.01".into(),
        version: "1.0.1".into(),
        procedure: "P.TS.01.PRC.001".into(),
        transaction: "P.TS.01.TRN.001".into(),
        message: "P.TS.01.MSG.001".into(),
        body,
        ..Default::default()
    }
}

/// A certificate issued in `seg`: the package's shipped sample (`<packages>/P.TS.01/samples/
/// MSG.001.xml`) with that state's country code, its own document number `n` and a fresh
/// EDocId.
pub fn certificate(packages: &Path, seg: &str, n: u32) -> std::io::Result<String> {
    let sample = std::fs::read_to_string(packages.join("P.TS.01/samples/MSG.001.xml"))?;
    let body = sample
        .split_once("?>")
        .map_or(sample.as_str(), |(_, b)| b)
        .trim();
    Ok(body
        .replace(">KZ<", &format!(">{seg}<"))
        .replace("KZ.01.АА.0001/2026", &format!("{seg}.01.АА.{n:04}/2026"))
        .replace(
            "5b0c1d0e-7e5a-4a3b-9f3e-1c2d3e4f5a6b",
            &uuid::Uuid::new_v4().to_string(),
        ))
}

/// The registry number of [`certificate`]`(_, seg, n)`.
pub fn doc_id(seg: &str, n: u32) -> String {
    format!("ЕАЭС {seg}.01.АА.{n:04}/2026")
}

fn now_stamp(now: time::OffsetDateTime) -> String {
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A status change (P.TS.01.MSG.002, R.XO.TS.01.001) of document `doc` issued in `seg` to
/// `status` (an official DocStatusCode: 01 действует, 02 приостановлен, ...), as of `now`.
pub fn status_change(seg: &str, doc: &str, status: &str, now: time::OffsetDateTime) -> String {
    format!(
        r#"<st:ConformityDocStatusDetails xmlns:st="urn:ortaq:R:XO:TS:01:ConformityDocStatusDetails:v1.0.0" xmlns:ccdo="urn:EEC:M:ComplexDataObjects:v0.4.5" xmlns:csdo="urn:EEC:M:SimpleDataObjects:v0.4.5" xmlns:trsdo="urn:EEC:M:TR:SimpleDataObjects:v1.0.3"><ccdo:EDocHeader><csdo:InfEnvelopeCode>P.TS.01.MSG.002</csdo:InfEnvelopeCode><csdo:EDocCode>R.XO.TS.01.001</csdo:EDocCode><csdo:EDocId>{}</csdo:EDocId><csdo:EDocDateTime>{}</csdo:EDocDateTime></ccdo:EDocHeader><csdo:UnifiedCountryCode codeListId="P.CLS.019">{seg}</csdo:UnifiedCountryCode><csdo:DocId>{doc}</csdo:DocId><trsdo:DocStatusCode>{status}</trsdo:DocStatusCode><csdo:StartDate>{}</csdo:StartDate></st:ConformityDocStatusDetails>"#,
        uuid::Uuid::new_v4(),
        now_stamp(now),
        now.date()
    )
}

/// A query (P.TS.01.MSG.003, R.XO.TS.01.002) for document `doc` issued in `seg`.
pub fn query(seg: &str, doc: &str, now: time::OffsetDateTime) -> String {
    format!(
        r#"<q:ConformityDocQuery xmlns:q="urn:ortaq:R:XO:TS:01:ConformityDocQuery:v1.0.0" xmlns:ccdo="urn:EEC:M:ComplexDataObjects:v0.4.5" xmlns:csdo="urn:EEC:M:SimpleDataObjects:v0.4.5"><ccdo:EDocHeader><csdo:InfEnvelopeCode>P.TS.01.MSG.003</csdo:InfEnvelopeCode><csdo:EDocCode>R.XO.TS.01.002</csdo:EDocCode><csdo:EDocId>{}</csdo:EDocId><csdo:EDocDateTime>{}</csdo:EDocDateTime></ccdo:EDocHeader><csdo:UnifiedCountryCode codeListId="P.CLS.019">{seg}</csdo:UnifiedCountryCode><csdo:DocId>{doc}</csdo:DocId></q:ConformityDocQuery>"#,
        uuid::Uuid::new_v4(),
        now_stamp(now),
    )
}
