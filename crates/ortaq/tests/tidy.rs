//! House rules, checked by `cargo test`: every Rust module opens with a `//!` line saying what it
//! is for, tests use no `should_panic` or `ignore`, ARCHITECTURE.md names every crate, and the
//! README's test command is the one CI runs.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if !p.ends_with("target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_says_what_it_is_for() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("fuzz/fuzz_targets"), &mut files);
    assert!(files.len() > 20);
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//! "))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a //! line: {missing:?}"
    );
}

#[test]
fn no_tests_that_cannot_fail() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    let attrs = [concat!("#[should", "_panic"), concat!("#[ig", "nore]")];
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for a in attrs {
            assert!(!text.contains(a), "{} uses {a}", f.display());
        }
    }
}

#[test]
fn architecture_names_every_crate() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for e in std::fs::read_dir(root().join("crates")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            arch.contains(&format!("### `crates/{name}`")),
            "ARCHITECTURE.md lacks crates/{name}"
        );
    }
}

#[test]
fn ci_runs_the_readme_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    for cmd in ["cargo test --workspace", "cargo run --release -- demo"] {
        assert!(readme.contains(cmd), "README lacks {cmd}");
    }
    assert!(
        ci.contains("\ncargo test --workspace"),
        ".ci/run does not run the README's test command"
    );
    assert!(
        ci.contains("-- demo --once"),
        ".ci/run does not run the demo"
    );
}
