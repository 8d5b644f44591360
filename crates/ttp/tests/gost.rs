//! The trusted third party judging a Russian-style signature: GOST R 34.10-2012 keys, a GOST
//! CA and a GOST CRL, all made by `openssl` with the gost engine (feature `gost`). Valid as of
//! now; revoked after the CRL's date; unknown under another CA; refused where the state's
//! algorithms do not include GOST.
#![cfg(feature = "gost")]

use std::path::Path;
use std::process::Command;

use dsig::Verifiers;
use dsig::gost::{GOST2012_256, GostSigner};
use time::{Duration, OffsetDateTime};
use ttp::{Reason, StateEntry, TrustList};

fn run(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn der(dir: &Path, what: &str, pem: &str) -> Vec<u8> {
    let out = format!("{pem}.der");
    run(dir, &[what, "-in", pem, "-outform", "DER", "-out", &out]);
    std::fs::read(dir.join(out)).unwrap()
}

/// A GOST CA in `dir`, a signer it issued (serial 77) and, when `revoke`, a CRL revoking it.
fn gost_ca(dir: &Path, name: &str, revoke: bool) -> (Vec<u8>, GostSigner, Vec<u8>) {
    std::fs::create_dir_all(dir).unwrap();
    let key = |f: &str| {
        run(
            dir,
            &[
                "genpkey",
                "-engine",
                "gost",
                "-algorithm",
                "gost2012_256",
                "-pkeyopt",
                "paramset:A",
                "-out",
                f,
            ],
        )
    };
    key("ca.key");
    let subj = format!("/CN={name} GOST test CA");
    run(
        dir,
        &[
            "req",
            "-x509",
            "-engine",
            "gost",
            "-key",
            "ca.key",
            "-md_gost12_256",
            "-subj",
            &subj,
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=keyCertSign,cRLSign",
            "-out",
            "ca.crt",
        ],
    );
    key("leaf.key");
    run(
        dir,
        &[
            "req",
            "-new",
            "-engine",
            "gost",
            "-key",
            "leaf.key",
            "-md_gost12_256",
            "-subj",
            &format!("/CN={name} GOST test signer"),
            "-out",
            "leaf.csr",
        ],
    );
    run(
        dir,
        &[
            "x509",
            "-req",
            "-engine",
            "gost",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-md_gost12_256",
            "-set_serial",
            "77",
            "-days",
            "10",
            "-out",
            "leaf.crt",
        ],
    );
    let ca = der(dir, "x509", "ca.crt");
    let leaf = der(dir, "x509", "leaf.crt");
    let signer =
        GostSigner::from_pem(&std::fs::read(dir.join("leaf.key")).unwrap(), &leaf).unwrap();
    let mut crl = Vec::new();
    if revoke {
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("crlnumber"), "01\n").unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("ca.cnf"),
            format!("[ca]\ndefault_ca=c\n[c]\ndatabase={d}/index.txt\ncrlnumber={d}/crlnumber\ndefault_md=md_gost12_256\ndefault_crl_days=7\ncertificate={d}/ca.crt\nprivate_key={d}/ca.key\n"),
        )
        .unwrap();
        run(
            dir,
            &[
                "ca", "-config", "ca.cnf", "-engine", "gost", "-revoke", "leaf.crt",
            ],
        );
        run(
            dir,
            &[
                "ca", "-config", "ca.cnf", "-engine", "gost", "-gencrl", "-out", "crl.pem",
            ],
        );
        crl = der(dir, "crl", "crl.pem");
    }
    (ca, signer, crl)
}

fn codes(r: &ttp::Receipt) -> Vec<&'static str> {
    r.signatures[0].reasons.iter().map(Reason::code).collect()
}

#[test]
fn gost_signatures_are_judged_against_a_gost_ca_and_crl() {
    if testkit::need(testkit::Judge::Gost, dsig::gost::load_engine()).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, signer, _) = gost_ca(&dir.path().join("ru"), "RU", false);
    let (ca_by, revoked, crl) = gost_ca(&dir.path().join("by"), "BY", true);
    let now = OffsetDateTime::now_utc();
    let list = |algorithms: Vec<String>| TrustList {
        version: 1,
        issued: now,
        next_update: now + Duration::days(30),
        ttps: Vec::new(),
        revoked_nodes: Vec::new(),
        providers: Vec::new(),
        states: vec![
            StateEntry {
                segment: "RU".into(),
                cas: vec![ca.clone()],
                algorithms: algorithms.clone(),
                crls: vec![],
            },
            StateEntry {
                segment: "BY".into(),
                cas: vec![ca_by.clone()],
                algorithms,
                crls: vec![crl.clone()],
            },
        ],
    };
    let gost = list(vec![GOST2012_256.into()]);
    let verifiers = Verifiers::national();
    let doc = "<tr:ConformityDocDetails xmlns:tr=\"urn:EEC:R:TR:TS:01:ConformityDocDetails:v1.0.1\"><tr:DocId>ЕАЭС RU С-RU.АБ12.В.00001</tr:DocId></tr:ConformityDocDetails>";
    let signed = dsig::sign_enveloped(doc, &signer).unwrap();
    let later = now + Duration::minutes(5);

    let r = ttp::check(&signed, later, later, &gost, &verifiers);
    assert!(r.valid(), "{:?}", r.signatures[0]);
    assert_eq!(r.signatures[0].state.as_deref(), Some("RU"));
    // Revoked by the Belarusian GOST CRL (its date is now, so five minutes on it counts).
    let by = dsig::sign_enveloped(doc, &revoked).unwrap();
    assert_eq!(
        codes(&ttp::check(&by, later, later, &gost, &verifiers)),
        ["revoked"]
    );
    // Under a list whose states use other algorithms, or without the CA, it fails by name.
    let other = list(vec![dsig::ECDSA_SHA256.into()]);
    assert_eq!(
        codes(&ttp::check(&signed, later, later, &other, &verifiers)),
        ["algorithm-not-allowed"]
    );
    let mut no_ca = gost.clone();
    no_ca.states.remove(0);
    assert_eq!(
        codes(&ttp::check(&signed, later, later, &no_ca, &verifiers)),
        ["unknown-ca"]
    );
}
