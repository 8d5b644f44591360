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
