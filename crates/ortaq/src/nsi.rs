//! `ortaq nsi`: reference data from the command line. Without `--config` it reads the data
//! shipped with ortaq (`data/nsi`); with a node's configuration it works on that node's
//! store: import (every problem at once, the diff, then all or nothing), versions, diffs and
//! export.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use nsi::format::{self, Format};
use nsi::model::{Content, format_date, parse_date};
use nsi::{Index, Item};

#[derive(clap::Args)]
pub struct NsiArgs {
    /// A node's configuration: work on its store. Without it, the shipped data is read.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Folder of the shipped data (default: `data/nsi` here or in the source tree).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: NsiCommand,
}

#[derive(clap::Subcommand)]
enum NsiCommand {
    /// Resources and crosswalks, with version, hash and size.
    List,
    /// One code of a resource as of a date: names, attributes, its place in the hierarchy.
    Lookup {
        resource: String,
        code: String,
        /// The date to answer for (YYYY-MM-DD); today if absent.
        #[arg(long)]
        as_of: Option<String>,
        /// Show only the name in this language.
        #[arg(long)]
        lang: Option<String>,
    },
    /// Codes whose names match, in any language and spelling.
    Search {
        resource: String,
        query: String,
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// A code of a crosswalk's source resource in its target resource.
    Translate {
        crosswalk: String,
        code: String,
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Checks a file and publishes it as the next version (needs --config).
    Import {
        file: PathBuf,
        /// json, csv or xml (default: from the file name).
        #[arg(long)]
        format: Option<String>,
        /// The resource or crosswalk a CSV file belongs to.
        #[arg(long)]
        resource: Option<String>,
        /// Check and show the diff only.
        #[arg(long)]
        dry_run: bool,
    },
    /// The versions of a resource or crosswalk (needs --config).
    Versions { code: String },
    /// What changed between two versions (needs --config).
    Diff { code: String, from: i64, to: i64 },
    /// Writes a version as JSON, CSV or XML to standard output (or --output).
    Export {
        code: String,
        #[arg(long)]
        version: Option<i64>,
        #[arg(long, default_value = "json")]
        format: String,
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// The shipped data folder: `--data`, else `data/nsi` in the working folder, else the one in
/// the source tree this binary was built from.
pub fn shipped_dir(data: Option<&Path>) -> PathBuf {
    if let Some(d) = data {
        return d.to_owned();
    }
    let here = PathBuf::from("data/nsi");
    if here.is_dir() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/nsi")
}

/// Publishes shipped data files (names in the shipped folder) into a node's store, each as
/// the next version of its resource unless that version is already there.
pub async fn publish_shipped(store: &store::Store, files: &[&str]) -> anyhow::Result<()> {
    let dir = shipped_dir(None);
    for f in files {
        let bytes = std::fs::read(dir.join(f)).with_context(|| format!("shipped data {f}"))?;
        let idx = node::reference::load(store).await?;
        node::reference::import(
            store,
            &idx,
            &bytes,
            Format::Json,
            None,
            false,
            store::system_micros(),
        )
        .await?;
    }
    Ok(())
}

/// Every JSON file of `dir`, checked, as version 0 of its resource or crosswalk.
pub fn load_shipped(dir: &Path) -> anyhow::Result<Index> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut contents = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f)?;
        let read = format::read(&bytes, Format::Json, None)
            .map_err(|p| anyhow::anyhow!("{}: {}", f.display(), p[0]))?;
        if let Some(p) = read.check().first() {
            bail!("{}: {p}", f.display());
        }
        contents.push(read.content);
    }
    // Resources before crosswalks.
    contents.sort_by_key(|c| matches!(c, Content::Crosswalk(_)));
    let mut idx = Index::default();
    for c in contents {
        let sha = c.sha256();
        idx.insert(c, 0, sha);
    }
    Ok(idx)
}

fn day(s: &Option<String>) -> anyhow::Result<time::Date> {
    match s {
        Some(s) => parse_date(s).map_err(anyhow::Error::msg),
        None => Ok(time::OffsetDateTime::now_utc().date()),
    }
}

async fn open_store(config: &Path) -> anyhow::Result<store::Store> {
    let cfg = node::NodeConfig::load(config)?;
    Ok(store::Store::open(store::StoreConfig::new(
        cfg.store_engine(),
    ))?)
}

fn name_line(it: &Item) -> String {
    it.names
        .iter()
        .map(|(l, n)| format!("{l}: {n}"))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

pub async fn run(args: NsiArgs) -> anyhow::Result<ExitCode> {
    let needs_store = matches!(
        args.command,
        NsiCommand::Import { .. } | NsiCommand::Versions { .. } | NsiCommand::Diff { .. }
    );
    let store = match &args.config {
        Some(c) => Some(open_store(c).await?),
        None if needs_store => bail!("this command works on a node's store: give --config"),
        None => None,
    };
    let result = run_with(args.command, store.as_ref(), args.data.as_deref()).await;
    if let Some(s) = store {
        s.close().await?;
    }
    result
}

async fn index(store: Option<&store::Store>, data: Option<&Path>) -> anyhow::Result<Index> {
    match store {
        Some(s) => Ok(node::reference::load(s).await?),
        None => load_shipped(&shipped_dir(data)),
    }
}

async fn run_with(
    cmd: NsiCommand,
    store: Option<&store::Store>,
    data: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    match cmd {
        NsiCommand::List => {
            let idx = index(store, data).await?;
            for r in idx.resources() {
                println!(
                    "{:<14} {:<10} v{} {} {:>6} items  {}",
                    r.header.code,
                    r.header.kind.as_str(),
                    r.version,
                    short(&r.sha256),
                    r.items().len(),
                    r.header
                        .names
                        .get("ru")
                        .or(r.header.names.get("en"))
                        .cloned()
                        .unwrap_or_default()
                );
            }
            for c in idx.crosswalks() {
                println!(
                    "{:<14} crosswalk  v{} {} {:>6} mappings  {} -> {}",
                    c.header.code,
                    c.version,
                    short(&c.sha256),
                    c.len(),
                    c.header.from,
                    c.header.to
                );
            }
        }
        NsiCommand::Lookup {
            resource,
            code,
            as_of,
            lang,
        } => {
            let on = day(&as_of)?;
            let idx = index(store, data).await?;
            let r = idx
                .resource(&resource)
                .with_context(|| format!("no resource {resource}"))?;
            let Some(it) = r.lookup(&code, on) else {
                let when: Vec<String> = r
                    .history(&code)
                    .iter()
                    .map(|i| {
                        format!(
                            "{} .. {}",
                            i.valid_from.map(format_date).unwrap_or_default(),
                            i.valid_to.map(format_date).unwrap_or_default()
                        )
                    })
                    .collect();
                if when.is_empty() {
                    println!("{code} is not a code of {resource}");
                } else {
                    println!(
                        "{code} is not valid in {resource} on {}; it is valid {}",
                        format_date(on),
                        when.join(", ")
                    );
                }
                return Ok(ExitCode::from(1));
            };
            if let Some(l) = lang {
                match it.names.get(&l) {
                    Some(n) => println!("{n}"),
                    None => bail!(
                        "{code} has no name in {l:?} (it has: {})",
                        it.names.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                }
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{resource} v{} ({}) as of {}",
                r.version,
                short(&r.sha256),
                format_date(on)
            );
            println!("{code}  {}", name_line(it));
            if !it.attributes.is_empty() {
                let a: Vec<String> = it
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!("  {}", a.join(" "));
            }
            let path = r.path(&code, on);
            if path.len() > 1 {
                let p: Vec<String> = path
                    .iter()
                    .map(|i| match i.attributes.get("level") {
                        Some(l) => format!("{} ({l})", i.code),
                        None => i.code.clone(),
                    })
                    .collect();
                println!("  path: {}", p.join(" -> "));
            }
            if it.valid_from.is_some() || it.valid_to.is_some() {
                println!(
                    "  valid {} .. {}",
                    it.valid_from.map(format_date).unwrap_or_default(),
                    it.valid_to.map(format_date).unwrap_or_default()
                );
            }
        }
        NsiCommand::Search {
            resource,
            query,
            as_of,
            limit,
        } => {
            let on = as_of.as_ref().map(|_| day(&as_of)).transpose()?;
            let idx = index(store, data).await?;
            let r = idx
                .resource(&resource)
                .with_context(|| format!("no resource {resource}"))?;
            let found = r.search(&query, on, limit);
            if found.is_empty() {
                println!("nothing in {resource} matches {query:?}");
                return Ok(ExitCode::from(1));
            }
            for (score, it) in found {
                println!("{:<10} {:.2}  {}", it.code, score, name_line(it));
            }
        }
        NsiCommand::Translate {
            crosswalk,
            code,
            as_of,
        } => {
            let on = day(&as_of)?;
            let idx = index(store, data).await?;
            let t = idx
                .translate(&crosswalk, &code, on)
                .map_err(anyhow::Error::msg)?;
            let cw = idx.crosswalk(&crosswalk).context("crosswalk vanished")?;
            if t.is_missing() {
                println!(
                    "{code} ({}) has no mapping to {} on {}",
                    cw.header.from,
                    cw.header.to,
                    format_date(on)
                );
                return Ok(ExitCode::from(1));
            }
            if t.is_ambiguous() {
                println!(
                    "{code} ({}) maps to {} codes of {}: ambiguous",
                    cw.header.from,
                    t.targets.len(),
                    cw.header.to
                );
            }
            let target = idx.resource(&cw.header.to);
            for (to, rel) in &t.targets {
                let name = target
                    .and_then(|r| r.lookup(to, on))
                    .map(name_line)
                    .unwrap_or_default();
                println!(
                    "{code} ({}) -> {to} ({}), {}: {name}",
                    cw.header.from,
                    cw.header.to,
                    rel.as_str()
                );
            }
        }
        NsiCommand::Import {
            file,
            format: f,
            resource,
            dry_run,
        } => {
            let store = store.context("--config")?;
            let fmt = match f {
                Some(f) => Format::parse(&f).map_err(anyhow::Error::msg)?,
                None => {
                    Format::of_path(&file).context("give --format: the file name does not say")?
                }
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let idx = node::reference::load(store).await?;
            match node::reference::import(
                store,
                &idx,
                &bytes,
                fmt,
                resource.as_deref(),
                dry_run,
                store::system_micros(),
            )
            .await
            {
                Ok(i) => {
                    println!(
                        "{} {} ({} entries, sha256 {})",
                        i.kind,
                        i.code,
                        i.entries,
                        short(&i.sha256)
                    );
                    println!("changes against the current version: {}", i.diff.summary(8));
                    match i.version {
                        Some((v, true)) => println!("published as version {v}"),
                        Some((v, false)) => println!("identical to version {v}: nothing published"),
                        None => println!("dry run: nothing published"),
                    }
                }
                Err(node::reference::ReferenceError::Problems(p)) => {
                    eprintln!("{}: {} problems, nothing stored:", file.display(), p.len());
                    for p in p.iter().take(200) {
                        eprintln!("  {p}");
                    }
                    return Ok(ExitCode::from(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        NsiCommand::Versions { code } => {
            let store = store.context("--config")?;
            let vs = store.nsi_versions(&code).await?;
            if vs.is_empty() {
                println!("nothing published as {code}");
                return Ok(ExitCode::from(1));
            }
            for (v, sha, at) in vs {
                println!("v{v}  {sha}  published {}", node::from_micros(at));
            }
        }
        NsiCommand::Diff { code, from, to } => {
            let store = store.context("--config")?;
            let mut got = Vec::new();
            for v in [from, to] {
                let x = store
                    .nsi_version(&code, Some(v))
                    .await?
                    .with_context(|| format!("{code} has no version {v}"))?;
                got.push(node::reference::decode(&x)?);
            }
            let (a, b) = (&got[0], &got[1]);
            println!(
                "{code} v{from} -> v{to}: {}",
                nsi::diff::diff(Some(a), b).summary(20)
            );
        }
        NsiCommand::Export {
            code,
            version,
            format: f,
            output,
        } => {
            let fmt = Format::parse(&f).map_err(anyhow::Error::msg)?;
            let content = match store {
                Some(s) => {
                    let v = s
                        .nsi_version(&code, version)
                        .await?
                        .with_context(|| format!("{code} is not published here"))?;
                    node::reference::decode(&v)?
                }
                None => {
                    let dir = shipped_dir(data);
                    let mut found = None;
                    for e in std::fs::read_dir(&dir)? {
                        let p = e?.path();
                        if p.extension().is_some_and(|x| x == "json") {
                            let r = format::read(&std::fs::read(&p)?, Format::Json, None)
                                .map_err(|p| anyhow::anyhow!("{}", p[0]))?;
                            if r.content.code() == code {
                                found = Some(r.content);
                            }
                        }
                    }
                    found.with_context(|| format!("no shipped resource {code}"))?
                }
            };
            let bytes = format::write(&content, fmt);
            match output {
                Some(p) => std::fs::write(&p, bytes)?,
                None => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
