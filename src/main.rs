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
    /// Start a throwaway PostgreSQL with sample data and airlock in front of it.
    Demo {
        /// Port for the proxy
        #[arg(long, default_value_t = 6432)]
        port: u16,
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
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    let proxy = airlock::Proxy::new(config.clone());
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

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
        _ = term.recv() => info!("SIGTERM received"),
    }
}
