//! airlock's settings: one [`Config`] resolved from command-line flags,
//! `AIRLOCK_*` environment variables and a TOML file, in that order of
//! precedence, with every problem reported at once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The resolved settings a running proxy uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The PostgreSQL server, as `host:port`.
    pub upstream: String,
    /// Where the admin API listens, if anywhere.
    pub admin_listen: Option<SocketAddr>,
    /// How long a client may take from connecting to finishing authentication.
    pub startup_timeout: Duration,
    /// How long connecting to the upstream may take.
    pub connect_timeout: Duration,
    /// Largest frontend message the proxy accepts (COPY data is streamed and
    /// not limited by it).
    pub max_message_size: usize,
    /// Client connections beyond this are refused with SQLSTATE 53300.
    pub max_client_connections: usize,
    /// On SIGINT/SIGTERM, how long sessions get to finish their work.
    pub shutdown_timeout: Duration,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Threads that run sessions, each a single-threaded runtime that owns
    /// its sessions outright (no work stealing, no cross-thread wake-ups).
    /// With 1, sessions run on the caller's runtime.
    pub workers: usize,
    /// The policy directory; `None` means the shipped default policy.
    pub policies: Option<std::path::PathBuf>,
    /// Requester groups: group name → role name globs.
    pub groups: Vec<(String, Vec<String>)>,
    /// Classify and decide every statement. Off only to measure what
    /// classification costs: everything is then forwarded unchecked.
    pub classification: bool,
    /// Run upstream sessions read-only by default, switched to read-write
    /// only for statements the policy lets through that are not reads (see
    /// docs/backstop.md).
    pub read_only_backstop: bool,
    /// Where approval requests and the audit trail live:
    /// `sqlite://PATH` or `postgres://...`.
    pub store: String,
    /// How long an approval may be used by re-running the statement.
    pub grant_lifetime: Duration,
    /// Pending requests older than this expire.
    pub request_ttl: Duration,
    /// The base URL reviewers use (review links in notices); default
    /// `http://ADMIN_LISTEN`.
    pub public_url: Option<String>,
    /// The reviewers and their API tokens.
    pub reviewers: Vec<Reviewer>,
    /// A conninfo airlock uses to EXPLAIN held statements as the requesting
    /// role (a role that may SET ROLE to requesters); none: no estimates.
    pub estimates: Option<String>,
    /// A conninfo airlock reads each database's catalog with (its user
    /// defined functions, operators, views, domains and policies; see
    /// `crate::catalog`). Without it, the upstream address and the connecting
    /// user, without a password.
    pub catalog: Option<String>,
    /// How often the catalog is checked for changes made past airlock.
    pub catalog_poll: Duration,
    /// Baselines recorded by `scripts/record-baseline.sh` beside the
    /// shipped one (another major version, extensions of one's own).
    pub catalog_baseline: Vec<std::path::PathBuf>,
}

/// A person who may decide requests through the admin API.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub name: String,
    /// The bearer token, resolved (never `env:...`).
    pub token: String,
    pub groups: Vec<String>,
    /// Database roles this person uses: their requests are their own.
    pub roles: Vec<String>,
}

/// A `[[reviewers]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewerEntry {
    pub name: String,
    /// The token, or `env:VAR` to read it from the environment.
    pub token: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Config {
    /// The groups `user` belongs to, by the `[groups]` table.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, members)| {
                members
                    .iter()
                    .any(|m| crate::policy::glob::matches(m, user))
            })
            .map(|(g, _)| g.clone())
            .collect()
    }
}

/// The default worker count: half the CPUs, at least one. A proxy usually
/// shares its machine with clients or the database, and one worker carries
/// tens of thousands of round trips per second.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Config {
    /// A configuration with defaults for everything but the addresses; tests
    /// and the demo start from here.
    pub fn new(listen: SocketAddr, upstream: impl Into<String>) -> Self {
        Config {
            listen,
            upstream: upstream.into(),
            admin_listen: None,
            startup_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_message_size: 64 << 20,
            max_client_connections: 10_000,
            shutdown_timeout: Duration::from_secs(30),
            log_format: LogFormat::Text,
            workers: 1,
            policies: None,
            groups: Vec::new(),
            classification: true,
            read_only_backstop: true,
            store: "sqlite://airlock.db".into(),
            grant_lifetime: Duration::from_secs(3600),
            request_ttl: Duration::from_secs(24 * 3600),
            public_url: None,
            reviewers: Vec::new(),
            estimates: None,
            catalog: None,
            catalog_poll: Duration::from_millis(250),
            catalog_baseline: Vec::new(),
        }
    }
}

/// Settings as they come from one source; unset fields fall through to the
/// next source. The TOML file uses the same names.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address clients connect to
    #[arg(long, env = "AIRLOCK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Upstream PostgreSQL server as HOST:PORT
    #[arg(long, env = "AIRLOCK_UPSTREAM")]
    pub upstream: Option<String>,
    /// Address of the admin API (health, metrics)
    #[arg(long, env = "AIRLOCK_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Seconds a client may take to connect and authenticate
    #[arg(long, env = "AIRLOCK_STARTUP_TIMEOUT")]
    pub startup_timeout: Option<f64>,
    /// Seconds connecting to the upstream may take
    #[arg(long, env = "AIRLOCK_CONNECT_TIMEOUT")]
    pub connect_timeout: Option<f64>,
    /// Largest frontend message in bytes (COPY data excepted)
    #[arg(long, env = "AIRLOCK_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,
    /// Most client connections at once
    #[arg(long, env = "AIRLOCK_MAX_CLIENT_CONNECTIONS")]
    pub max_client_connections: Option<usize>,
    /// Seconds sessions get to finish on shutdown
    #[arg(long, env = "AIRLOCK_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Option<f64>,
    /// Log format
    #[arg(long, env = "AIRLOCK_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Session threads (default: half the CPUs, at least one)
    #[arg(long, env = "AIRLOCK_WORKERS")]
    pub workers: Option<usize>,
    /// Policy directory (default: the shipped policy)
    #[arg(long, env = "AIRLOCK_POLICIES")]
    pub policies: Option<std::path::PathBuf>,
    /// Classify statements (false only for benchmarks: forwards everything)
    #[arg(long, env = "AIRLOCK_CLASSIFICATION")]
    pub classification: Option<bool>,
    /// Run reads in read-only transactions on the upstream (default true)
    #[arg(long, env = "AIRLOCK_READ_ONLY_BACKSTOP")]
    pub read_only_backstop: Option<bool>,
    /// Approval store: sqlite://PATH (default sqlite://airlock.db) or postgres://...
    #[arg(long, env = "AIRLOCK_STORE")]
    pub store: Option<String>,
    /// Seconds an approval may be used by re-running the statement (default 3600)
    #[arg(long, env = "AIRLOCK_GRANT_LIFETIME")]
    pub grant_lifetime: Option<f64>,
    /// Seconds before a pending request expires (default 86400)
    #[arg(long, env = "AIRLOCK_REQUEST_TTL")]
    pub request_ttl: Option<f64>,
    /// Base URL of the admin API as reviewers reach it (for review links)
    #[arg(long, env = "AIRLOCK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Conninfo for row estimates of held statements (EXPLAIN as the requester)
    #[arg(long, env = "AIRLOCK_ESTIMATES")]
    pub estimates: Option<String>,
    /// Conninfo for reading each database's catalog (default: the upstream, as the connecting user)
    #[arg(long, env = "AIRLOCK_CATALOG")]
    pub catalog: Option<String>,
    /// Seconds between checks for catalog changes made past airlock (default 1)
    #[arg(long, env = "AIRLOCK_CATALOG_POLL")]
    pub catalog_poll: Option<f64>,
    /// Baseline files of what PostgreSQL and extensions ship, beside the shipped one (scripts/record-baseline.sh)
    #[arg(long, env = "AIRLOCK_CATALOG_BASELINE", value_delimiter = ',')]
    #[serde(default)]
    pub catalog_baseline: Vec<std::path::PathBuf>,
    /// Reviewers (config file only): `[[reviewers]] name, token, groups, roles`
    #[arg(skip)]
    #[serde(default)]
    pub reviewers: Vec<ReviewerEntry>,
    /// Requester groups (config file only): `[groups] name = ["role", "glob*"]`
    #[arg(skip)]
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
}

/// Every problem found in the settings, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

impl Settings {
    /// Reads a TOML settings file.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(vec![format!("{}: {e}", path.display())]))?;
        toml::from_str(&text).map_err(|e| ConfigError(vec![format!("{}: {e}", path.display())]))
    }

    /// Fills every unset field from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            upstream: self.upstream.or(lower.upstream),
            admin_listen: self.admin_listen.or(lower.admin_listen),
            startup_timeout: self.startup_timeout.or(lower.startup_timeout),
            connect_timeout: self.connect_timeout.or(lower.connect_timeout),
            max_message_size: self.max_message_size.or(lower.max_message_size),
            max_client_connections: self.max_client_connections.or(lower.max_client_connections),
            shutdown_timeout: self.shutdown_timeout.or(lower.shutdown_timeout),
            log_format: self.log_format.or(lower.log_format),
            workers: self.workers.or(lower.workers),
            policies: self.policies.or(lower.policies),
            classification: self.classification.or(lower.classification),
            read_only_backstop: self.read_only_backstop.or(lower.read_only_backstop),
            store: self.store.or(lower.store),
            grant_lifetime: self.grant_lifetime.or(lower.grant_lifetime),
            request_ttl: self.request_ttl.or(lower.request_ttl),
            public_url: self.public_url.or(lower.public_url),
            estimates: self.estimates.or(lower.estimates),
            catalog: self.catalog.or(lower.catalog),
            catalog_poll: self.catalog_poll.or(lower.catalog_poll),
            catalog_baseline: if self.catalog_baseline.is_empty() {
                lower.catalog_baseline
            } else {
                self.catalog_baseline
            },
            reviewers: if self.reviewers.is_empty() {
                lower.reviewers
            } else {
                self.reviewers
            },
            groups: if self.groups.is_empty() {
                lower.groups
            } else {
                self.groups
            },
        }
    }

    /// Checks every field and resolves defaults.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let listen = self
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 6432)));
        let upstream = match self.upstream {
            Some(u) if valid_host_port(&u) => u,
            Some(u) => {
                errors.push(format!("upstream {u:?} is not HOST:PORT"));
                String::new()
            }
            None => {
                errors.push("upstream is required (--upstream HOST:PORT)".into());
                String::new()
            }
        };
        let mut config = Config::new(listen, upstream);
        config.admin_listen = self.admin_listen;
        let mut seconds = |name: &str, v: Option<f64>, into: &mut Duration| {
            if let Some(v) = v {
                match Duration::try_from_secs_f64(v) {
                    Ok(d) if v > 0.0 => *into = d,
                    _ => errors.push(format!("{name} must be a positive number of seconds")),
                }
            }
        };
        seconds(
            "startup_timeout",
            self.startup_timeout,
            &mut config.startup_timeout,
        );
        seconds(
            "connect_timeout",
            self.connect_timeout,
            &mut config.connect_timeout,
        );
        seconds(
            "shutdown_timeout",
            self.shutdown_timeout,
            &mut config.shutdown_timeout,
        );
        if let Some(m) = self.max_message_size {
            if m < 1024 {
                errors.push("max_message_size must be at least 1024 bytes".into());
            } else {
                config.max_message_size = m;
            }
        }
        if let Some(m) = self.max_client_connections {
            if m == 0 {
                errors.push("max_client_connections must be at least 1".into());
            } else {
                config.max_client_connections = m;
            }
        }
        config.log_format = self.log_format.unwrap_or_default();
        if let Some(dir) = &self.policies {
            if !dir.is_dir() {
                errors.push(format!("policies {} is not a directory", dir.display()));
            }
        }
        config.policies = self.policies;
        config.classification = self.classification.unwrap_or(true);
        config.read_only_backstop = self.read_only_backstop.unwrap_or(true);
        if let Some(store) = self.store {
            if store.starts_with("sqlite:")
                || store.starts_with("postgres:")
                || store.starts_with("postgresql:")
            {
                config.store = store;
            } else {
                errors.push(format!(
                    "store {store:?} is not sqlite://PATH or postgres://..."
                ));
            }
        }
        seconds_into(
            &mut errors,
            "grant_lifetime",
            self.grant_lifetime,
            &mut config.grant_lifetime,
        );
        seconds_into(
            &mut errors,
            "request_ttl",
            self.request_ttl,
            &mut config.request_ttl,
        );
        config.public_url = self.public_url;
        config.estimates = self.estimates;
        if let Some(c) = &self.catalog {
            if let Err(e) = c.parse::<tokio_postgres::Config>() {
                errors.push(format!("catalog is not a valid conninfo: {e}"));
            }
        }
        config.catalog = self.catalog;
        for p in &self.catalog_baseline {
            match std::fs::read_to_string(p) {
                Ok(text) => {
                    if let Err(e) = crate::catalog::baseline::Baseline::parse(&text) {
                        errors.push(format!("catalog_baseline {}: {e}", p.display()));
                    }
                }
                Err(e) => errors.push(format!("catalog_baseline {}: {e}", p.display())),
            }
        }
        config.catalog_baseline = self.catalog_baseline;
        seconds_into(
            &mut errors,
            "catalog_poll",
            self.catalog_poll,
            &mut config.catalog_poll,
        );
        let mut names = std::collections::HashSet::new();
        for r in self.reviewers {
            if !names.insert(r.name.clone()) {
                errors.push(format!("reviewer {:?} is defined twice", r.name));
            }
            let token = match r.token.strip_prefix("env:") {
                Some(var) => match std::env::var(var) {
                    Ok(t) => t,
                    Err(_) => {
                        errors.push(format!(
                            "reviewer {:?}: environment variable {var} is not set",
                            r.name
                        ));
                        continue;
                    }
                },
                None => r.token,
            };
            if token.len() < 16 {
                errors.push(format!(
                    "reviewer {:?}: the token must be at least 16 characters",
                    r.name
                ));
                continue;
            }
            config.reviewers.push(Reviewer {
                name: r.name,
                token,
                groups: r.groups,
                roles: r.roles,
            });
        }
        config.groups = self.groups.into_iter().collect();
        config.workers = match self.workers {
            Some(0) => {
                errors.push("workers must be at least 1".into());
                1
            }
            Some(n) => n,
            None => default_workers(),
        };
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(errors))
        }
    }
}

fn seconds_into(errors: &mut Vec<String>, name: &str, v: Option<f64>, into: &mut Duration) {
    if let Some(v) = v {
        match Duration::try_from_secs_f64(v) {
            Ok(d) if v > 0.0 => *into = d,
            _ => errors.push(format!("{name} must be a positive number of seconds")),
        }
    }
}

fn valid_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file() {
        let file: Settings =
            toml::from_str("upstream = \"db:5432\"\nlisten = \"0.0.0.0:7000\"\n").unwrap();
        let flags = Settings {
            listen: Some("127.0.0.1:6500".parse().unwrap()),
            ..Default::default()
        };
        let c = flags.or(file).resolve().unwrap();
        assert_eq!(c.listen.port(), 6500);
        assert_eq!(c.upstream, "db:5432");
    }

    #[test]
    fn every_error_is_reported() {
        let s = Settings {
            upstream: Some("nohost".into()),
            startup_timeout: Some(-1.0),
            max_message_size: Some(3),
            ..Default::default()
        };
        let err = s.resolve().unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn groups_map_roles_by_glob() {
        let s: Settings = toml::from_str(
            "upstream = \"db:5432\"\n[groups]\ndevelopers = [\"alice\", \"dev_*\"]\nops = [\"bob\"]\n",
        )
        .unwrap();
        let c = s.resolve().unwrap();
        assert_eq!(c.groups_of("dev_7"), vec!["developers"]);
        assert_eq!(c.groups_of("bob"), vec!["ops"]);
        assert!(c.groups_of("carol").is_empty());
    }

    #[test]
    fn reviewer_tokens_come_from_the_environment() {
        std::env::set_var("AIRLOCK_TEST_TOKEN_ALICE", "alice-token-0123456789");
        let s: Settings = toml::from_str(
            "upstream = \"db:1\"\n[[reviewers]]\nname = \"alice\"\ntoken = \"env:AIRLOCK_TEST_TOKEN_ALICE\"\ngroups = [\"reviewers\"]\n\n[[reviewers]]\nname = \"bob\"\ntoken = \"env:AIRLOCK_TEST_TOKEN_UNSET\"\n",
        )
        .unwrap();
        let err = s.clone().resolve().unwrap_err();
        assert!(
            err.to_string().contains("AIRLOCK_TEST_TOKEN_UNSET"),
            "{err}"
        );
        let mut s = s;
        s.reviewers.pop();
        let c = s.resolve().unwrap();
        assert_eq!(c.reviewers[0].token, "alice-token-0123456789");
        assert_eq!(c.reviewers[0].groups, vec!["reviewers"]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Settings>("upstrem = \"x:1\"").is_err());
    }
}
