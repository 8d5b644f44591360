//! `ortaq node people`: the accounts of people who sign in to a node's pages (not its ISs,
//! whose tokens `ortaq node token` keeps).

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use node::config::NodeConfig;

#[derive(Subcommand)]
pub enum PeopleCommand {
    /// Add an account; its password is the first line of standard input.
    Add {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        login: String,
        /// The name the pages show.
        #[arg(long)]
        name: String,
        /// operator, analyst, officer or business; repeat for several.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<people::Role>,
    },
    /// A new password (first line of standard input): ends the account's sessions and lifts a
    /// lock-out.
    Password {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        login: String,
    },
    /// Every account: login, roles, name.
    List {
        #[arg(long)]
        config: PathBuf,
    },
}

fn parse_role(s: &str) -> Result<people::Role, String> {
    people::Role::from_code(s)
        .ok_or_else(|| format!("{s:?} is not a role: operator, analyst, officer or business"))
}

fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

pub async fn run(cmd: PeopleCommand) -> anyhow::Result<ExitCode> {
    let config = match &cmd {
        PeopleCommand::Add { config, .. }
        | PeopleCommand::Password { config, .. }
        | PeopleCommand::List { config } => config.clone(),
    };
    let cfg = NodeConfig::load(&config)?;
    let p = people::People::open(
        cfg.store_engine().for_app("people"),
        node::system_clock(),
        people::Policy::default(),
    )?;
    let result = async {
        match cmd {
            PeopleCommand::Add {
                login, name, roles, ..
            } => {
                let password = password_from_stdin()?;
                p.add(&login, &name, &roles, &password).await?;
                println!("account {login} added");
            }
            PeopleCommand::Password { login, .. } => {
                let password = password_from_stdin()?;
                p.set_password(&login, &password).await?;
                println!("password of {login} changed; its sessions ended");
            }
            PeopleCommand::List { .. } => {
                for a in p.accounts().await? {
                    let roles: Vec<_> = a.roles.iter().map(|r| r.code()).collect();
                    println!("{:<24}  {:<24}  {}", a.login, roles.join(","), a.name);
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    p.close().await?;
    result?;
    Ok(ExitCode::SUCCESS)
}
