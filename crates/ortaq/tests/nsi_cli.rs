//! `ortaq nsi` with a node's store, through the real binary: an import publishes a version
//! only when every check passes, shows what changed, and a repeated import publishes nothing;
//! a broken file is refused with its problems by line and leaves the store as it was; a
//! stored version whose bytes were altered is refused, never served.

use std::path::Path;
use std::process::Output;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ortaq"))
}

fn shipped(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/nsi")
        .join(name)
}

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("node.toml"),
            "segment = \"KZ\"\nlisten = \"127.0.0.1:1\"\ndata_dir = \"data\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Node { dir }
    }

    fn nsi(&self, args: &[&str]) -> Output {
        std::process::Command::new(exe())
            .arg("nsi")
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("node.toml"))
            .output()
            .unwrap()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `args` and expects `status` and every one of `says` in the output.
fn check(node: &Node, args: &[&str], status: i32, says: &[&str]) -> String {
    let o = node.nsi(args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(status), "{args:?}: {t}");
    for s in says {
        assert!(t.contains(s), "{args:?} should say {s:?}: {t}");
    }
    t
}

#[test]
fn imports_version_and_refuse_what_is_broken_or_altered() {
    let n = Node::new();
    let countries = shipped("countries.json");
    let c = countries.to_str().unwrap();
    check(
        &n,
        &["import", c],
        0,
        &["249 added", "published as version 1"],
    );
    check(&n, &["import", c], 0, &["identical to version 1"]);
    check(
        &n,
        &["lookup", "P.CLS.019", "BY", "--lang", "kk"],
        0,
        &["Беларусь"],
    );

    // A CSV edit of one name: the diff shows it, and it becomes version 2.
    let csv = check(
        &n,
        &["export", "P.CLS.019", "--format", "csv"],
        0,
        &["code,parent"],
    );
    let edited = csv.replacen("Belarus,", "Republic of Belarus,", 1);
    let f = n.file("edit.csv", &edited);
    check(
        &n,
        &["import", &f, "--resource", "P.CLS.019", "--dry-run"],
        0,
        &["1 changed", "BY", "dry run"],
    );
    check(
        &n,
        &["import", &f, "--resource", "P.CLS.019"],
        0,
        &["published as version 2"],
    );
    check(
        &n,
        &["diff", "P.CLS.019", "1", "2"],
        0,
        &["0 added, 0 removed, 1 changed", "BY"],
    );
    check(
        &n,
        &["lookup", "P.CLS.019", "BY", "--lang", "en"],
        0,
        &["Republic of Belarus"],
    );

    // Broken files: every problem, with its line; the store keeps version 2 only.
    let bad = n.file(
        "bad.csv",
        "code,name:ru,name:xx,valid_from\nAA,Аа,,2020-01-01\nAA,Аа,,2020-01-01\nBB,,,\nCC,Вв,,31.12.2020\n",
    );
    check(
        &n,
        &["import", &bad, "--resource", "P.CLS.019"],
        2,
        &[
            "nothing stored",
            "line 5: valid_from",
            "line 3 (AA): duplicate code AA",
            "line 4 (BB): has no name",
            "unknown language \"xx\"",
        ],
    );
    let hs = n.file("hs.csv", "code,name:en\n01,Animals\n");
    check(
        &n,
        &["import", &hs, "--resource", "WCO.HS.2022"],
        2,
        &["no resource or crosswalk WCO.HS.2022"],
    );
    let cw = shipped("cn-hs.json");
    check(
        &n,
        &["import", cw.to_str().unwrap()],
        2,
        &["source resource EU.CN.2023 is not published here"],
    );
    check(&n, &["versions", "P.CLS.019"], 0, &["v1", "v2"]);
    assert_eq!(
        check(&n, &["versions", "P.CLS.019"], 0, &[])
            .lines()
            .count(),
        2
    );

    // Someone edits the stored bytes: the node refuses to serve them.
    let db = n.dir.path().join("data/node.db");
    let mut raw = db::SqliteConn::open(&db, false).unwrap();
    use db::Conn as _;
    raw.execute(
        "UPDATE nsi_versions SET content = CAST(REPLACE(CAST(content AS TEXT), 'Беларусь', 'Беларуся') AS BLOB) WHERE version = 2",
        &[],
    )
    .unwrap();
    drop(raw);
    check(
        &n,
        &["lookup", "P.CLS.019", "BY"],
        1,
        &["does not match the recorded"],
    );
}

#[test]
fn the_shipped_data_answers_without_a_node() {
    let run = |args: &[&str]| {
        let o = std::process::Command::new(exe())
            .arg("nsi")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        run(&["lookup", "P.CLS.019", "BY", "--lang", "kk"]).trim(),
        "Беларусь"
    );
    assert!(run(&["lookup", "WCO.HS.2022", "847130"]).contains("-> 84 (chapter)"));
    assert!(
        run(&["translate", "X.EU.CN.2023-WCO.HS.2022", "84713000"])
            .contains("-> 847130 (WCO.HS.2022), broader")
    );
    assert!(run(&["search", "P.CLS.019", "Қазақстан"]).starts_with("KZ "));
}
