//! `ortaq process list|show|check`: the process packages a node would load (by default the
//! ones shipped in `processes/`), printed and checked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use process::Package;

#[derive(clap::Args)]
pub struct ProcessArgs {
    /// Folder of packages (one sub-folder per process); default: `processes` here or in the
    /// source tree.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: ProcessCommand,
}

#[derive(clap::Subcommand)]
enum ProcessCommand {
    /// The packages, with their transactions and messages counted.
    List,
    /// One process: roles, transactions with pattern and limits, messages and structures, rules.
    Show { code: String },
    /// Loads every package (or the one in PATH), compiles its schemas and rules, and reports
    /// every problem.
    Check { path: Option<PathBuf> },
    /// Validates an e-document as the document of a message: XSD, EDocHeader and filling
    /// rules, with code lists from the shipped reference data. Exit status 1 if invalid.
    Validate {
        /// The XML file.
        file: PathBuf,
        /// Message code, e.g. `P.TS.01.MSG.001`.
        #[arg(long)]
        message: String,
        /// The process version whose package to use (default: the latest that defines the
        /// message).
        #[arg(long)]
        version: Option<String>,
        /// The EDocId the document must answer (for responses).
        #[arg(long)]
        ref_id: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Folder of the reference data (default: the shipped `data/nsi`).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

pub fn packages_dir(dir: Option<&Path>) -> PathBuf {
    if let Some(d) = dir {
        return d.to_owned();
    }
    let here = PathBuf::from("processes");
    if here.is_dir() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes")
}

fn name(n: &process::package::Names) -> &str {
    n.get("ru")
        .or(n.get("en"))
        .map(String::as_str)
        .unwrap_or("")
}

fn secs(s: Option<u64>) -> String {
    s.map_or("-".into(), |s| format!("{s} s"))
}

pub fn run(args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let dir = packages_dir(args.dir.as_deref());
    match args.command {
        ProcessCommand::List => {
            for p in process::package::load_all(&dir)? {
                println!(
                    "{} {:<7} {} transactions, {} messages, {} structures, {} rules  {}",
                    p.process.code,
                    p.process.version,
                    p.transactions.len(),
                    p.messages.len(),
                    p.structures.len(),
                    p.rules.len(),
                    name(&p.process.names)
                );
            }
        }
        ProcessCommand::Show { code } => {
            let p = process::package::load_all(&dir)?
                .into_iter()
                .find(|p| p.process.code == code)
                .with_context(|| format!("no package {code} in {}", dir.display()))?;
            println!(
                "{} {}  {}",
                p.process.code,
                p.process.version,
                name(&p.process.names)
            );
            if !p.process.modeled_on.is_empty() {
                println!("  modeled on {}", p.process.modeled_on);
            }
            println!("roles:");
            for r in &p.roles {
                println!("  {:<18} {}", r.code, name(&r.names));
            }
            println!("transactions:");
            for t in &p.transactions {
                println!(
                    "  {:<18} {:<24} {} -> {}  {}",
                    t.code,
                    t.pattern.name(),
                    t.initiator,
                    t.responder,
                    name(&t.names)
                );
                println!(
                    "      {} -> [{}]; RCV {}, PRS {}, response {}, retries {}",
                    t.message,
                    t.responses.join(", "),
                    secs(t.receipt_secs),
                    secs(t.processing_secs),
                    secs(t.response_secs),
                    t.retries
                );
            }
            println!("messages:");
            for m in &p.messages {
                let ns = p
                    .structure(&m.structure, &m.structure_version)
                    .map(|s| s.namespace.as_str())
                    .unwrap_or("?");
                println!(
                    "  {:<18} {} {} ({ns})  {}",
                    m.code,
                    m.structure,
                    m.structure_version,
                    name(&m.names)
                );
            }
            if !p.rules.is_empty() {
                println!("filling rules:");
                for r in &p.rules {
                    println!("  {:<22} {:?} at {}", r.id, r.check, r.path);
                }
            }
        }
        ProcessCommand::Check { path } => {
            let dirs: Vec<PathBuf> = match path {
                Some(p) => vec![p],
                None => std::fs::read_dir(&dir)?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.join("process.toml").is_file())
                    .collect(),
            };
            let mut failed = false;
            for d in dirs {
                match Package::load(&d) {
                    Ok(p) => match edoc::Validator::new(
                        std::slice::from_ref(&p),
                        edoc::Limits::default(),
                    ) {
                        Ok(_) => println!(
                            "{}: {} {} is consistent; its schemas and rules compile",
                            d.display(),
                            p.process.code,
                            p.process.version
                        ),
                        Err(problems) => {
                            failed = true;
                            eprintln!("{}: {} problems:", d.display(), problems.0.len());
                            for x in problems.0 {
                                eprintln!("  {x}");
                            }
                        }
                    },
                    Err(e) => {
                        failed = true;
                        eprintln!("{e}");
                    }
                }
            }
            if failed {
                return Ok(ExitCode::from(2));
            }
        }
        ProcessCommand::Validate {
            file,
            message,
            version,
            ref_id,
            json,
            data,
        } => {
            let packages = process::package::load_all(&dir)?;
            // The package that defines the message: the version asked for, else the latest.
            let numeric =
                |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
            let pkg = packages
                .iter()
                .filter(|p| p.message(&message).is_some())
                .filter(|p| version.as_ref().is_none_or(|v| &p.process.version == v))
                .max_by_key(|p| numeric(&p.process.version))
                .with_context(|| {
                    format!(
                        "no loaded package defines {message}{}",
                        version
                            .as_ref()
                            .map(|v| format!(" in version {v}"))
                            .unwrap_or_default()
                    )
                })?;
            let (process_code, process_version) =
                (pkg.process.code.clone(), pkg.process.version.clone());
            let v = edoc::Validator::new(&packages, edoc::Limits::default())
                .map_err(|p| anyhow::anyhow!("packages do not compile:\n  {}", p.0.join("\n  ")))?;
            let idx = crate::nsi::load_shipped(&crate::nsi::shipped_dir(data.as_deref()))?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let report = v.validate(
                &bytes,
                &edoc::Context {
                    process: &process_code,
                    version: &process_version,
                    message: &message,
                    ref_id: ref_id.as_deref(),
                    nsi: &idx,
                    common: None,
                    now: time::OffsetDateTime::now_utc(),
                },
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&file.display().to_string(), &report);
            }
            if !report.is_valid() {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Diagnostics as a person reads them: rule, place, both languages.
pub fn print_report(what: &str, r: &edoc::Report) {
    let st = r
        .structure
        .as_ref()
        .map(|(c, v)| format!("{c} {v}"))
        .unwrap_or_else(|| "?".into());
    if r.is_valid() {
        println!("{what}: valid {st}");
        return;
    }
    println!("{what}: {} problems ({st})", r.diagnostics.len());
    for d in &r.diagnostics {
        let line = d.line.map(|l| format!(" line {l}")).unwrap_or_default();
        println!("  [{}] {}{line}", d.rule, d.xpath);
        println!("      ru: {}", d.ru);
        println!("      en: {}", d.en);
    }
}
