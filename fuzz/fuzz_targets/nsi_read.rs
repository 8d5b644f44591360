//! Fuzz target: reference-data imports (JSON, CSV, XML) read outside files; any bytes get
//! content or a list of problems, and checking what was read never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nsi::format::{self, Format};

fuzz_target!(|data: &[u8]| {
    let base: nsi::Content = serde_json::from_str(
        r#"{"resource": {"code": "T.CLS.1", "kind": "classifier", "names": {"en": "Test"}}, "items": []}"#,
    )
    .expect("base");
    for f in [Format::Json, Format::Csv, Format::Xml] {
        if let Ok(r) = format::read(data, f, Some(&base)) {
            let _ = r.check();
            let _ = r.content.sha256();
        }
    }
});
