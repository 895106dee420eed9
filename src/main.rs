//! The `airlock` command: a thin bootstrap over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info};

use airlock::config::{LogFormat, Settings};

#[derive(Parser)]
#[command(
    name = "airlock",
    version,
    about = "PostgreSQL proxy that holds writes for human approval"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start; the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve {
        #[command(flatten)]
        settings: Settings,
        /// TOML file with the same settings (flags and AIRLOCK_* variables win)
        #[arg(long, env = "AIRLOCK_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Test policies, or ask what a policy decides for a statement.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Start a throwaway PostgreSQL with sample data and airlock in front of it.
    Demo {
        /// Port for the proxy
        #[arg(long, default_value_t = 6432)]
        port: u16,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run the test cases (*.test.toml) of a policy directory against it.
    Test {
        /// The policy directory
        dir: PathBuf,
    },
    /// Print the facts found in SQL and the decision with the rule that made it.
    Check {
        /// Requesting role
        #[arg(long)]
        user: String,
        /// Database
        #[arg(long)]
        database: String,
        /// Groups of the requester (else from --config's [groups])
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Policy directory (default: the shipped policy)
        #[arg(long)]
        policies: Option<PathBuf>,
        /// airlock config file, for its [groups]
        #[arg(long)]
        config: Option<PathBuf>,
        /// Conninfo of the database whose user code to take into account
        /// (docs/catalog.md); without it the text alone is judged
        #[arg(long)]
        catalog: Option<String>,
        /// The SQL
        sql: String,
    },
}

/// Exit code for a configuration that does not validate.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { settings, config } => {
            let file = match config.as_deref().map(Settings::from_file).transpose() {
                Ok(f) => f.unwrap_or_default(),
                Err(e) => {
                    eprintln!("airlock: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let config = match settings.or(file).resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("airlock: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            init_tracing(config.log_format);
            runtime().block_on(serve(config))
        }
        Command::Policy { command } => policy_command(command),
        Command::Demo { port } => {
            init_tracing(LogFormat::Text);
            match runtime().block_on(airlock::demo::run(port)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("airlock demo: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The main runtime runs the listener, the admin API and, with one worker,
/// the sessions too; more workers get runtimes of their own.
fn policy_command(command: PolicyCommand) -> ExitCode {
    use airlock::policy::{cases, Policy, Requester};
    let load = |dir: Option<&std::path::Path>| match dir {
        None => Ok(airlock::policy::shipped()),
        Some(d) => Policy::load(d).map_err(|errors| {
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::from(EXIT_CONFIG)
        }),
    };
    match command {
        PolicyCommand::Test { dir } => {
            let policy = match load(Some(&dir)) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let all = match cases::load(&dir) {
                Ok(c) => c,
                Err(errors) => {
                    for e in errors {
                        eprintln!("{e}");
                    }
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let (mut passed, mut failed) = (0, 0);
            for o in cases::run(&policy, all) {
                match &o.failure {
                    None => passed += 1,
                    Some(why) => {
                        failed += 1;
                        println!(
                            "FAIL {}:{}: {}\n     {why}",
                            o.file.display(),
                            o.line,
                            o.case.sql
                        );
                    }
                }
            }
            println!("policy test: {passed} passed, {failed} failed");
            if failed == 0 && passed > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        PolicyCommand::Check {
            user,
            database,
            mut groups,
            policies,
            config,
            catalog,
            sql,
        } => {
            let policy = match load(policies.as_deref()) {
                Ok(p) => p,
                Err(code) => return code,
            };
            if let Some(file) = config {
                match Settings::from_file(&file).and_then(|s| {
                    Settings {
                        upstream: Some("unused:1".into()),
                        ..s
                    }
                    .resolve()
                }) {
                    Ok(c) => groups.extend(c.groups_of(&user)),
                    Err(e) => {
                        eprintln!("airlock: {e}");
                        return ExitCode::from(EXIT_CONFIG);
                    }
                }
            }
            let mut facts = std::sync::Arc::new(airlock::classify::classify(&sql));
            if let Some(conninfo) = catalog {
                match runtime().block_on(airlock::catalog::load_snapshot(&conninfo)) {
                    Ok(snapshot) => {
                        let known =
                            airlock::catalog::Known::Snapshot(std::sync::Arc::new(snapshot));
                        facts = airlock::catalog::resolve(&facts, &known, false, &[]);
                    }
                    Err(e) => {
                        eprintln!("airlock: cannot read the catalog: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let facts = policy.trusted(&facts);
            let who = Requester {
                user: &user,
                database: &database,
                groups: &groups,
            };
            let decision = policy.decide(&facts, &who);
            let out = serde_json::json!({ "facts": facts, "decision": decision });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            ExitCode::SUCCESS
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: airlock::Config) -> ExitCode {
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            error!(listen = %config.listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let policy = match &config.policies {
        None => airlock::policy::shipped(),
        Some(dir) => match airlock::policy::Policy::load(dir) {
            Ok(p) => p,
            Err(errors) => {
                for e in errors {
                    error!(file = %e.file, line = e.line, error = %e.message, "policy does not load");
                }
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    info!(rules = policy.rules.len(), policies = ?config.policies, "policy loaded");
    let proxy = airlock::Proxy::with_policy(config.clone(), policy);
    match airlock::store::Store::open(&config.store).await {
        Ok(store) => {
            info!(store = %config.store, "approval store open");
            let _ = proxy.approvals.set(airlock::approval::Approvals::start(
                store,
                approval_settings(&config),
            ));
        }
        Err(e) => {
            error!(store = %config.store, error = %e, "cannot open the approval store");
            return ExitCode::FAILURE;
        }
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if let Some(addr) = config.admin_listen {
        match TcpListener::bind(addr).await {
            Ok(l) => {
                info!(admin = %addr, "admin API listening");
                let mut rx = stop_rx.clone();
                let proxy = proxy.clone();
                tokio::spawn(async move {
                    let stop = async move {
                        let _ = rx.wait_for(|s| *s).await;
                    };
                    if let Err(e) = airlock::admin::serve(l, proxy, stop).await {
                        error!(error = %e, "admin API failed");
                    }
                });
            }
            Err(e) => {
                error!(admin = %addr, error = %e, "cannot listen for the admin API");
                return ExitCode::FAILURE;
            }
        }
    }
    info!(listen = %config.listen, upstream = %config.upstream, "airlock listening");
    let result = proxy.serve(listener, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    drop(stop_rx);
    match result {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!(error = %e, "proxy failed");
            ExitCode::FAILURE
        }
    }
}

/// The approval workflow's settings from the config.
fn approval_settings(config: &airlock::Config) -> airlock::approval::ApprovalSettings {
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| match config.admin_listen {
            Some(a) => format!("http://{a}"),
            None => String::new(),
        });
    airlock::approval::ApprovalSettings {
        grant_lifetime: config.grant_lifetime,
        request_ttl: config.request_ttl,
        review_url: format!("{}/api/v1/requests/", base.trim_end_matches('/')),
        estimates: config.estimates.clone(),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
        _ = term.recv() => info!("SIGTERM received"),
    }
}
