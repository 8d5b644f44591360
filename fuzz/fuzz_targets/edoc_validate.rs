//! Fuzz target: e-document validation of outside bytes as the document of P.TS.01.MSG.001
//! (roxmltree first, then libxml2 XSD, header checks and filling rules): any bytes get a
//! report, never a panic, and every diagnostic says where and why.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Shared {
    packages: Vec<process::Package>,
    nsi: nsi::Index,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut nsi = nsi::Index::default();
        let bytes = std::fs::read(root.join("data/nsi/countries.json")).expect("countries");
        let read = nsi::format::read(&bytes, nsi::format::Format::Json, None).expect("read");
        let sha = read.content.sha256();
        nsi.insert(read.content, 1, sha);
        Shared {
            packages: process::package::load_all(&root.join("processes")).expect("packages"),
            nsi,
        }
    })
}

thread_local! {
    // libxml2 state stays on the thread that made it.
    static V: edoc::Validator = edoc::Validator::new(&shared().packages, edoc::Limits { max_bytes: 64 << 10, max_nodes: 10_000 }).expect("validator");
}

fuzz_target!(|data: &[u8]| {
    let s = shared();
    V.with(|v| {
        for message in ["P.TS.01.MSG.001", "P.TS.01.MSG.004"] {
            let r = v.validate(
                data,
                &edoc::Context {
                    process: "P.TS.01",
                    version: "1.0.1",
                    message,
                    ref_id: Some("5b0c1d0e-7e5a-4a3b-9f3e-1c2d3e4f5a6b"),
                    nsi: &s.nsi,
                    common: None,
                    now: time::OffsetDateTime::UNIX_EPOCH,
                },
            );
            for d in &r.diagnostics {
                assert!(!d.rule.is_empty() && d.xpath.starts_with('/') && !d.en.is_empty());
            }
        }
    });
});
