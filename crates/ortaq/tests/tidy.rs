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

/// The modules of one crate that `file` uses: `crate::m::...`, `use crate::{m, ...}`, and names
/// the crate root re-exports from a module (`pub use m::Name`), resolved to that module.
fn module_uses(text: &str, modules: &[String], reexports: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |ident: &str| {
        if modules.iter().any(|m| m == ident) {
            out.push(ident.to_owned());
        } else if let Some((_, m)) = reexports.iter().find(|(n, _)| n == ident) {
            out.push(m.clone());
        }
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let ident: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                add(&ident);
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            add(&ident);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// No two modules of a crate use each other, directly or round a circle: each crate reads top
/// down (cargo already refuses a cycle between crates).
#[test]
fn no_import_cycle_between_modules() {
    let mut checked = 0;
    for name in crate_dirs() {
        let src = root().join("crates").join(&name).join("src");
        let Ok(dir) = std::fs::read_dir(&src) else {
            continue;
        };
        let files: Vec<PathBuf> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        let stem = |p: &Path| p.file_stem().unwrap().to_string_lossy().into_owned();
        let modules: Vec<String> = files
            .iter()
            .map(|p| stem(p))
            .filter(|m| m != "lib" && m != "main")
            .collect();
        let root_text = std::fs::read_to_string(src.join("lib.rs"))
            .or_else(|_| std::fs::read_to_string(src.join("main.rs")))
            .unwrap_or_default();
        let mut reexports = Vec::new();
        for line in root_text.lines() {
            let Some(rest) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let Some((m, names)) = rest.split_once("::") else {
                continue;
            };
            if !modules.iter().any(|x| x == m) {
                continue;
            }
            for n in names.trim_matches(|c| "{};".contains(c)).split(',') {
                let n = n.trim().trim_end_matches(['}', ';']);
                reexports.push((n.to_owned(), m.to_owned()));
            }
        }
        let edges: Vec<(String, Vec<String>)> = files
            .iter()
            .filter(|p| modules.contains(&stem(p)))
            .map(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                let m = stem(p);
                let mut uses = module_uses(&text, &modules, &reexports);
                uses.retain(|u| *u != m);
                (m, uses)
            })
            .collect();
        // Depth-first search; a module met again while still on the path closes a circle.
        fn visit(
            m: &str,
            edges: &[(String, Vec<String>)],
            path: &mut Vec<String>,
            done: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            if let Some(i) = path.iter().position(|p| p == m) {
                let mut circle = path[i..].to_vec();
                circle.push(m.to_owned());
                return Some(circle);
            }
            if done.iter().any(|d| d == m) {
                return None;
            }
            path.push(m.to_owned());
            for next in edges
                .iter()
                .find(|(n, _)| n == m)
                .map(|(_, u)| u.as_slice())
                .unwrap_or(&[])
            {
                if let Some(c) = visit(next, edges, path, done) {
                    return Some(c);
                }
            }
            path.pop();
            done.push(m.to_owned());
            None
        }
        let mut done = Vec::new();
        for (m, _) in &edges {
            let circle = visit(m, &edges, &mut Vec::new(), &mut done);
            assert!(
                circle.is_none(),
                "crates/{name}: modules import each other round a circle: {}",
                circle.unwrap_or_default().join(" -> ")
            );
        }
        checked += 1;
    }
    assert!(checked > 15);
}
