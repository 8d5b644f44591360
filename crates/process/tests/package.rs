//! Process packages: the shipped ones load clean; a broken manifest is refused with every
//! problem, each naming the entry it concerns.

use std::path::{Path, PathBuf};

use process::Package;
use process::engine::Pattern;

fn shipped(code: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../processes")
        .join(code)
}

#[test]
fn the_shipped_packages_load() {
    let all = process::package::load_all(&shipped("")).unwrap();
    let codes: Vec<&str> = all.iter().map(|p| p.process.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "P.CC.10", "P.TS.01", "P.XO.01", "P.XO.02", "P.XO.03", "P.ZZ.01"
        ]
    );
    let zz = &all[5];
    let mut patterns: Vec<Pattern> = zz.transactions.iter().map(|t| t.pattern).collect();
    patterns.dedup();
    assert_eq!(patterns.len(), 6, "the test process has every pattern");
    let ts = &all[1];
    let t = ts.transaction_of("P.TS.01.MSG.004").unwrap();
    assert_eq!(t.code, "P.TS.01.TRN.001");
    assert_eq!(
        ts.structure("R.TR.TS.01.001", "1.0.1").unwrap().root,
        "ConformityDocsRegistryDetails"
    );
}

/// Parses `manifest` (files resolved in the P.TS.01 folder) and expects exactly these
/// problems, each given as a fragment of its text.
fn check(manifest: &str, expect: &[&str]) {
    let got = match Package::parse(&shipped("P.TS.01"), manifest) {
        Ok(_) => vec![],
        Err(p) => p,
    };
    assert_eq!(got.len(), expect.len(), "{got:#?}");
    for e in expect {
        assert!(
            got.iter().any(|g| g.contains(e)),
            "expected {e:?} in {got:#?}"
        );
    }
}

const HEAD: &str = r#"
[process]
code = "P.TS.01"
version = "1.0.1"
names = { en = "T" }
[namespaces]
tr = "urn:t"
[[roles]]
code = "P.ACT.001"
names = { en = "EEC" }
[[roles]]
code = "P.TS.01.ACT.002"
names = { en = "NCA" }
[[procedures]]
code = "P.TS.01.PRC.001"
names = { en = "P" }
[[structures]]
code = "R.001"
version = "1.0.0"
namespace = "urn:t"
root = "T"
xsd = "xsd/ConformityDocStatusDetails.xsd"
[[messages]]
code = "P.TS.01.MSG.001"
names = { en = "M1" }
structure = "R.001"
structure_version = "1.0.0"
[[messages]]
code = "P.TS.01.MSG.002"
names = { en = "M2" }
structure = "R.001"
structure_version = "1.0.0"
"#;

fn trn(extra: &str) -> String {
    format!(
        "{HEAD}\n[[transactions]]\ncode = \"P.TS.01.TRN.001\"\nprocedure = \"P.TS.01.PRC.001\"\nnames = {{ en = \"T\" }}\ninitiator = \"P.TS.01.ACT.002\"\nresponder = \"P.ACT.001\"\nmessage = \"P.TS.01.MSG.001\"\n{extra}\n"
    )
}

#[test]
fn broken_packages_say_everything_that_is_wrong() {
    check(
        &trn(
            "pattern = \"request-response\"\nresponses = [\"P.TS.01.MSG.002\"]\nresponse_secs = 60",
        ),
        &[],
    );
    check(
        &trn("pattern = \"request-response\"\nresponses = [\"P.TS.01.MSG.009\"]"),
        &[
            "message P.TS.01.MSG.009 is not defined",
            "needs a response time",
        ],
    );
    check(
        &trn("pattern = \"notification\""),
        &["needs a receipt-confirmation time"],
    );
    check(&trn("pattern = \"gossip\""), &["unknown variant `gossip`"]);
    check(
        &format!(
            "{HEAD}\n[[transactions]]\ncode = \"P.MM.01.TRN.001\"\nprocedure = \"P.TS.01.PRC.009\"\nnames = {{ en = \"T\" }}\npattern = \"information-distribution\"\ninitiator = \"P.TS.01.ACT.007\"\nresponder = \"P.ACT.001\"\nmessage = \"P.TS.01.MSG.001\"\n"
        ),
        &[
            "P.MM.01.TRN.001 belongs to process P.MM.01",
            "procedure P.TS.01.PRC.009 is not defined",
            "initiator role P.TS.01.ACT.007 is not defined",
        ],
    );
    check(
        &HEAD.replace("xsd/ConformityDocStatusDetails.xsd", "xsd/missing.xsd"),
        &["missing.xsd is missing"],
    );
    // Structure codes have the data model's form; one of our own (a user-assigned area) does
    // not take the Commission's namespace.
    check(
        &HEAD
            .replace("code = \"R.001\"", "code = \"R.ORTAQ.1\"")
            .replace("structure = \"R.001\"", "structure = \"R.ORTAQ.1\""),
        &["not of the data model's EDocCode form"],
    );
    check(
        &HEAD
            .replace("code = \"R.001\"", "code = \"R.XO.TT.01.001\"")
            .replace("structure = \"R.001\"", "structure = \"R.XO.TT.01.001\"")
            .replace(
                "namespace = \"urn:t\"",
                "namespace = \"urn:EEC:R:XO:TT:01:T:v1.0.0\"",
            ),
        &["a namespace of our own"],
    );
    check(
        &HEAD.replace(
            "structure_version = \"1.0.0\"\n[[messages]]",
            "structure_version = \"9.9.9\"\n[[messages]]",
        ),
        &["structure R.001 9.9.9 is not in the package"],
    );
    check(
        &format!(
            "{HEAD}\n[[rules]]\nid = \"R1\"\nmessage = \"P.TS.01.MSG.001\"\npath = \"/x:T\"\ncheck = {{ kind = \"present\" }}\ntext = {{ ru = \"т\" }}\n"
        ),
        &["prefix \"x\""],
    );
    check(
        &format!(
            "{HEAD}\n[[rules]]\nid = \"R1\"\nmessage = \"P.TS.01.MSG.001\"\npath = \"/tr:T\"\ncheck = {{ kind = \"present\" }}\ntext = {{ en = \"t\" }}\n"
        ),
        &["needs a Russian text"],
    );
    check(
        &HEAD.replace("version = \"1.0.1\"", "version = \"1.0\""),
        &["is not X.Y.Z"],
    );
    check(
        &HEAD.replace("code = \"P.TS.01.MSG.002\"", "code = \"P.TS.01.MSG.001\""),
        &["P.TS.01.MSG.001 is defined twice"],
    );
}
