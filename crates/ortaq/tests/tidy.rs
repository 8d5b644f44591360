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

/// Every crate folder (one with a `Cargo.toml`) under `crates/`, as a path from `crates/`:
/// `node`, `apps/conformity`, ...
fn crate_dirs() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root().join("crates").join(&rel)).unwrap() {
            let e = e.unwrap();
            if !e.path().is_dir() {
                continue;
            }
            let name = e.file_name().into_string().unwrap();
            let sub = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.path().join("Cargo.toml").exists() {
                out.push(sub);
            } else if !["src", "tests", "migrations", "target"].contains(&sub.as_str()) {
                stack.push(sub);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn architecture_names_every_crate() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let crates = crate_dirs();
    assert!(crates.len() > 15, "{crates:?}");
    for name in crates {
        assert!(
            arch.contains(&format!("### `crates/{name}`")),
            "ARCHITECTURE.md lacks crates/{name}"
        );
    }
}

/// Every dependency of every crate takes its version from `[workspace.dependencies]`: one
/// place to read and change what the build pulls in.
#[test]
fn every_dependency_version_is_in_the_workspace_table() {
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(workspace.contains("[workspace.dependencies]"));
    for name in crate_dirs() {
        let manifest =
            std::fs::read_to_string(root().join("crates").join(&name).join("Cargo.toml")).unwrap();
        let mut in_deps = false;
        for line in manifest.lines() {
            let l = line.trim();
            if l.starts_with('[') {
                in_deps = l.contains("dependencies");
                continue;
            }
            if in_deps && !l.is_empty() && !l.starts_with('#') {
                assert!(
                    l.contains(".workspace = true") || l.contains("workspace = true"),
                    "crates/{name}/Cargo.toml names its own version: {l}"
                );
            }
        }
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
