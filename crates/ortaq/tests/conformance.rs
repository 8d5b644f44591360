//! `ortaq conformance demo` through the real binary: the built-in registry keeper conforms to
//! P.TS.01 (every check passes), and a deliberately broken IS gets a protocol that names what
//! it does wrong (no PRS, a response pointing at no document, silence for a retry), with exit
//! status 1.

use std::path::Path;

fn free_base() -> u16 {
    // Four consecutive free ports: two adapter APIs and two federation listeners.
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        drop(l);
        if p < 60000 && (1..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", p + i)).is_ok()) {
            return p;
        }
    }
}

fn run(broken: bool) -> (i32, serde_json::Value) {
    let out = tempfile::tempdir().unwrap();
    let base = free_base().to_string();
    let mut args = vec![
        "conformance",
        "demo",
        "--timeout",
        "2",
        "--base-port",
        &base,
        "--out",
    ];
    let dir = out.path().to_str().unwrap().to_owned();
    args.push(&dir);
    if broken {
        args.push("--broken");
    }
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_ortaq"))
        .args(&args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .unwrap();
    let p = std::fs::read(out.path().join("protocol.json"))
        .unwrap_or_else(|_| panic!("no protocol: {}", String::from_utf8_lossy(&o.stderr)));
    let md = std::fs::read_to_string(out.path().join("protocol.md")).unwrap();
    assert!(md.starts_with("# Conformance protocol: P.TS.01 1.0.1, role P.ACT.001"));
    (
        o.status.code().unwrap(),
        serde_json::from_slice(&p).unwrap(),
    )
}

fn results(p: &serde_json::Value) -> Vec<(String, String, String)> {
    p["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["transaction"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
                c["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_builtin_keeper_conforms_and_a_broken_is_does_not() {
    let (code, p) = run(false);
    let r = results(&p);
    assert_eq!(code, 0, "{r:#?}");
    assert_eq!(p["failed"], 0);
    assert_eq!(p["passed"].as_u64().unwrap(), r.len() as u64, "{r:#?}");
    // Every transaction the keeper answers, with its error paths.
    for trn in ["P.TS.01.TRN.001", "P.TS.01.TRN.002", "P.TS.01.TRN.003"] {
        for name in [
            "the transaction completes as its pattern says",
            "a retry (new MessageID, same ConversationID) is answered",
        ] {
            assert!(
                r.contains(&(trn.into(), name.into(), "pass".into())),
                "{trn} {name}: {r:#?}"
            );
        }
    }
    assert!(p["envelopes"].as_array().unwrap().len() > 20);

    let (code, p) = run(true);
    let r = results(&p);
    assert_eq!(code, 1);
    let failed = |trn: &str, name: &str| r.contains(&(trn.into(), name.into(), "fail".into()));
    assert!(
        failed("P.TS.01.TRN.001", "PRS within the processing time"),
        "{r:#?}"
    );
    assert!(
        failed(
            "P.TS.01.TRN.002",
            "the response is valid (XSD, header with EDocRefId, filling rules)"
        ),
        "{r:#?}"
    );
    assert!(
        failed(
            "P.TS.01.TRN.003",
            "a retry (new MessageID, same ConversationID) is answered"
        ),
        "{r:#?}"
    );
    // The node's own checks still hold for it: a message out of order is refused at the EEC
    // node before the IS sees it, and so is a wrong EDocCode.
    assert!(r.contains(&(
        "P.TS.01.TRN.001".into(),
        "P.TS.01.MSG.004 out of order is answered ERR Common:UnexpectedMessage".into(),
        "pass".into()
    )));
    assert!(r.contains(&(
        "P.TS.01.TRN.001".into(),
        "a document with a wrong EDocCode is refused as the process says".into(),
        "pass".into()
    )));
}
