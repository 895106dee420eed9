//! The driver matrix: real client drivers, ORMs and dump tools from other
//! languages, doing what applications and backup jobs do on connect and for
//! reads, run once straight against PostgreSQL and once through airlock with
//! the shipped policy (`tests/drivers/README.md` lists what each covers).
//!
//! Each script prints `ok <step>` or `FAIL <step>: <error>` per step (and
//! `... <step>` on stderr as a step starts), gives every step a timeout of
//! its own and exits non-zero if any failed; each run has a hard timeout
//! too, past which the script's whole process group is killed and the step
//! it was in is named. For every group of scripts:
//!
//! - direct, every step passes: otherwise the script or the seeded schema
//!   is broken, and the test says so;
//! - through airlock, every step passes too;
//! - and nothing was held or refused: these workloads only read, so any
//!   request in the admin API, and any `hold` or `deny` in its audit trail,
//!   is a false hold.
//!
//! A reviewer runs alongside and rejects every held request at once, so
//! that a read wrongly held fails its step at once (with airlock's 42501)
//! instead of waiting out the rule's timeout; the report names the held
//! statement, its rule and risks. With `AIRLOCK_DRIVERS_REVIEW=approve`
//! the reviewer approves instead (two reviewers, for rules that want two),
//! so that a workload goes on past its first hold and the report lists
//! every statement it would have had held; the test fails all the same.
//!
//! The drivers come from the registries (PyPI, npm, Debian) through
//! `scripts/setup.sh`, which CI runs, so a missing one fails the test with
//! what to run rather than skipping it, as for pgjdbc.

mod common;
#[path = "drivers/prerequisites.rs"]
mod prerequisites;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::approval::{proxy_with, ALICE, BOB, CAROL};
use common::http::call;
use common::*;
use prerequisites::*;
use serde_json::Value;

/// The database the scripts read, seeded once per test binary.
const DB: &str = "airlock_drivers";

/// Creates and seeds the database once, straight in PostgreSQL.
fn seeded() {
    static SEEDED: OnceLock<()> = OnceLock::new();
    SEEDED.get_or_init(|| {
        stdout_ok(&psql(
            pg().port,
            "postgres",
            "postgres",
            &["-c", &format!("CREATE DATABASE {DB}")],
        ));
        let schema = drivers_dir().join("schema.sql");
        stdout_ok(&psql(
            pg().port,
            "postgres",
            DB,
            &["-q", "-f", schema.to_str().unwrap()],
        ));
    });
}

/// One script of the matrix.
struct Script {
    /// What the report calls it.
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
}

fn python(name: &'static str, file: &str) -> Script {
    Script {
        name,
        program: venv_python(),
        args: vec![path_arg(&format!("python/{file}"))],
    }
}

fn node(name: &'static str, file: &str) -> Script {
    Script {
        name,
        program: "node".into(),
        args: vec![path_arg(&format!("node/{file}"))],
    }
}

fn ruby(name: &'static str, file: &str) -> Script {
    Script {
        name,
        program: "ruby".into(),
        args: vec![path_arg(&format!("ruby/{file}"))],
    }
}

fn path_arg(rel: &str) -> String {
    drivers_dir().join(rel).to_string_lossy().into_owned()
}

/// What one run of a script printed and how it ended.
#[derive(Debug, Default)]
struct Run {
    /// Steps in the order they reported: name, and the error if failed.
    steps: Vec<(String, Option<String>)>,
    /// Set when the run was killed: the step it was in.
    killed_in: Option<String>,
    exit: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn all_ok(&self) -> bool {
        self.killed_in.is_none()
            && self.exit == Some(0)
            && !self.steps.is_empty()
            && self.steps.iter().all(|(_, e)| e.is_none())
    }

    fn step(&self, name: &str) -> Option<&Option<String>> {
        self.steps.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }

    fn output(&self) -> String {
        format!(
            "exit {:?}, killed in {:?}\n--- stdout\n{}--- stderr (last 60 lines)\n{}",
            self.exit,
            self.killed_in,
            self.stdout,
            tail(&self.stderr, 60)
        )
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].join("\n") + "\n"
}

/// Runs `script` against `port` with `args` after its own, in a process
/// group of its own that is killed whole past the run timeout.
fn run(script: &Script, port: u16, extra: &[String]) -> Run {
    use std::os::unix::process::CommandExt;
    let dsn = format!("postgresql://postgres@127.0.0.1:{port}/{DB}");
    let mut cmd = Command::new(&script.program);
    cmd.args(&script.args)
        .args(extra)
        .current_dir(drivers_dir())
        .env("DRIVER_DSN", &dsn)
        .env("DRIVER_STEP_TIMEOUT", step_timeout().to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for var in [
        "PGHOST",
        "PGHOSTADDR",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGOPTIONS",
        "PGTZ",
        "PGSERVICE",
        "DATABASE_URL",
    ] {
        cmd.env_remove(var);
    }
    match pg_bindir() {
        Some(dir) => cmd.env("PG_BINDIR", dir),
        None => cmd.env_remove("PG_BINDIR"),
    };
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}: {SETUP}", script.program.display()));
    let pid = child.id();
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + run_timeout();
    let mut killed = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the script") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            killed = true;
            break None;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let mut r = Run {
        exit: status.and_then(|s| s.code()),
        ..Default::default()
    };
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("ok ") {
            r.steps.push((name.trim().to_string(), None));
        } else if let Some(rest) = line.strip_prefix("FAIL ") {
            let (name, e) = rest.split_once(": ").unwrap_or((rest, ""));
            r.steps.push((name.to_string(), Some(e.to_string())));
        }
    }
    if killed {
        let last = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("... "))
            .next_back()
            .unwrap_or("(before its first step)")
            .to_string();
        r.killed_in = Some(last);
    }
    r.stdout = stdout;
    r.stderr = stderr;
    r
}

fn collect(pipe: impl std::io::Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(l) => {
                    s.push_str(&l);
                    s.push('\n');
                }
                Err(_) => break,
            }
        }
        s
    })
}

/// A reviewer who decides every pending request of one proxy as soon as it
/// appears: rejects it, or approves it (`AIRLOCK_DRIVERS_REVIEW=approve`).
struct Reviewer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reviewer {
    fn start(admin: SocketAddr) -> Reviewer {
        let stop = Arc::new(AtomicBool::new(false));
        let approve = approving();
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = call(
                        admin,
                        "GET",
                        "/api/v1/requests?status=pending&limit=500",
                        Some(ALICE),
                        None,
                    );
                    assert_eq!(status, 200, "list pending requests: {body}");
                    for r in body["items"].as_array().into_iter().flatten() {
                        let id = r["id"].as_str().unwrap_or_default();
                        if approve {
                            for token in [ALICE, BOB] {
                                let _ = call(
                                    admin,
                                    "POST",
                                    &format!("/api/v1/requests/{id}/approve"),
                                    Some(token),
                                    Some(r#"{"comment": "driver matrix: let it run"}"#),
                                );
                            }
                        } else {
                            let reason =
                                r#"{"reason": "driver matrix: a read-only workload was held"}"#;
                            let _ = call(
                                admin,
                                "POST",
                                &format!("/api/v1/requests/{id}/reject"),
                                Some(ALICE),
                                Some(reason),
                            );
                        }
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
        });
        Reviewer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Reviewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every item of a paged admin API list (`next_before` cursors).
fn all_pages(admin: SocketAddr, path: &str, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let url = match &before {
            Some(b) => format!("{path}&before={b}"),
            None => path.to_string(),
        };
        let (status, body) = call(admin, "GET", &url, Some(token), None);
        assert_eq!(status, 200, "GET {url}: {body}");
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
        before = match &body["next_before"] {
            Value::Null => break,
            Value::String(s) => Some(s.clone()),
            v => Some(v.to_string()),
        };
    }
    items
}

/// What the admin API shows of holds and refusals.
#[derive(Default, Clone)]
struct Decisions {
    /// Requests (held statements) by id.
    requests: BTreeMap<String, Value>,
    /// `hold` and `deny` audit entries by id.
    refusals: BTreeMap<i64, Value>,
}

fn decisions(admin: SocketAddr) -> Decisions {
    let mut d = Decisions::default();
    for r in all_pages(admin, "/api/v1/requests?limit=500", ALICE) {
        d.requests
            .insert(r["id"].as_str().unwrap_or_default().to_string(), r);
    }
    for e in all_pages(admin, "/api/v1/audit?limit=1000", CAROL) {
        if e["event"] == "hold" || e["event"] == "deny" {
            d.refusals.insert(e["id"].as_i64().unwrap_or_default(), e);
        }
    }
    d
}

/// The decisions once the audit trail (written in the background) has
/// stopped growing.
fn settled_decisions(admin: SocketAddr) -> Decisions {
    let mut last = decisions(admin);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let now = decisions(admin);
        if now.requests.len() == last.requests.len() && now.refusals.len() == last.refusals.len() {
            return now;
        }
        last = now;
    }
    last
}

/// What was held or refused after `before`, one line each.
fn new_decisions(before: &Decisions, after: &Decisions) -> Vec<String> {
    let mut lines = Vec::new();
    for (id, r) in &after.requests {
        if !before.requests.contains_key(id) {
            lines.push(format!(
                "held {id} (rule {}, risks {}, {}): {}",
                r["rule"],
                r["risks"],
                r["status"],
                one_line(r["sql"].as_str().unwrap_or_default())
            ));
        }
    }
    for (id, e) in &after.refusals {
        if !before.refusals.contains_key(id) && e["event"] == "deny" {
            lines.push(format!(
                "denied (rule {}, {}): {}",
                e["rule"],
                one_line(e["outcome"].as_str().unwrap_or_default()),
                one_line(e["sql"].as_str().unwrap_or_default())
            ));
        }
    }
    lines
}

/// `sql` on one line, whitespace squeezed, at most 300 characters.
fn one_line(sql: &str) -> String {
    let s = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 300 {
        format!("{}...", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

/// What one script did through airlock.
struct Outcome {
    script: &'static str,
    direct: Run,
    via: Run,
    held: Vec<String>,
    /// Further checks (dumps equal to the direct ones): name, error.
    extra: Vec<(String, Option<String>)>,
}

impl Outcome {
    fn failed(&self) -> bool {
        !self.via.all_ok() || !self.held.is_empty() || self.extra.iter().any(|(_, e)| e.is_some())
    }

    fn report(&self) -> String {
        let mut s = format!("{}:\n", self.script);
        for (name, direct) in &self.direct.steps {
            debug_assert!(direct.is_none());
            let line = match self.via.step(name) {
                Some(None) => format!("  ok   {name}"),
                Some(Some(e)) => format!("  FAIL {name}: {e}"),
                None => match &self.via.killed_in {
                    Some(k) if k == name => {
                        format!("  FAIL {name}: hung, run killed after {:?}", run_timeout())
                    }
                    Some(_) => format!("  FAIL {name}: not run (the run was killed)"),
                    None => format!("  FAIL {name}: not reported through airlock"),
                },
            };
            s.push_str(&line);
            s.push('\n');
        }
        for (name, _) in &self.via.steps {
            if self.direct.step(name).is_none() {
                s.push_str(&format!("  ?    {name}: reported through airlock only\n"));
            }
        }
        if self.via.exit != Some(0) && self.via.killed_in.is_none() && self.via.all_ok() {
            s.push_str(&format!("  exit {:?} through airlock\n", self.via.exit));
        }
        for (name, e) in &self.extra {
            match e {
                None => s.push_str(&format!("  ok   {name}\n")),
                Some(e) => s.push_str(&format!("  FAIL {name}: {e}\n")),
            }
        }
        for h in &self.held {
            s.push_str(&format!("  {h}\n"));
        }
        s
    }
}

/// Runs every script of a group direct and through one proxy with the
/// shipped policy; fails (with the whole table) unless everything passed
/// both ways with nothing held. `check` may add checks of its own with the
/// direct and the proxied run's extra arguments (an output directory).
fn matrix(
    group: &str,
    scripts: Vec<Script>,
    extra_args: impl Fn(&str, &str) -> Vec<String>,
    check: impl Fn(&Script, &Run, &Run) -> Vec<(String, Option<String>)>,
) {
    seeded();
    let proxy = proxy_with(|c| c.shutdown_timeout = Duration::from_secs(2));
    let _reviewer = Reviewer::start(proxy.admin);
    let mut outcomes = Vec::new();
    for script in &scripts {
        let direct = run(script, pg().port, &extra_args(script.name, "direct"));
        assert!(
            direct.all_ok(),
            "{group}: {} fails straight against PostgreSQL, so the test itself \
             (the script, the seeded schema or the installed driver) is broken:\n{}",
            script.name,
            direct.output()
        );
        let before = settled_decisions(proxy.admin);
        let via = run(script, proxy.port(), &extra_args(script.name, "airlock"));
        let after = settled_decisions(proxy.admin);
        let extra = check(script, &direct, &via);
        outcomes.push(Outcome {
            script: script.name,
            held: new_decisions(&before, &after),
            direct,
            via,
            extra,
        });
    }
    let report: String = outcomes.iter().map(Outcome::report).collect();
    eprintln!("driver matrix, {group}, through airlock:\n{report}");
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.failed())
        .map(|o| o.script)
        .collect();
    let details: String = outcomes
        .iter()
        .filter(|o| o.failed())
        .map(|o| format!("--- {} through airlock\n{}", o.script, o.via.output()))
        .collect();
    assert!(
        failed.is_empty(),
        "{group}: {} of {} scripts fail through airlock or had reads held \
         (reviewer {}):\n{report}\n{details}",
        failed.len(),
        outcomes.len(),
        if approving() {
            "approving"
        } else {
            "rejecting"
        }
    );
}

fn no_extra(_: &str, _: &str) -> Vec<String> {
    Vec::new()
}

fn no_check(_: &Script, _: &Run, _: &Run) -> Vec<(String, Option<String>)> {
    Vec::new()
}

#[test]
fn python_drivers() {
    require_python();
    matrix(
        "python",
        vec![
            python("asyncpg", "asyncpg_reads.py"),
            python("psycopg 3", "psycopg3_reads.py"),
            python("psycopg2", "psycopg2_reads.py"),
            python("SQLAlchemy", "sqlalchemy_reads.py"),
            python("Django", "django_reads.py"),
        ],
        no_extra,
        no_check,
    );
}

#[test]
fn node_drivers() {
    require_node();
    matrix(
        "node",
        vec![
            node("node-postgres (pg)", "pg_reads.js"),
            node("postgres.js", "postgresjs_reads.js"),
            node("knex", "knex_reads.js"),
            node("Sequelize", "sequelize_reads.js"),
        ],
        no_extra,
        no_check,
    );
}

#[test]
fn ruby_drivers() {
    require_ruby();
    matrix(
        "ruby",
        vec![
            ruby("ruby-pg", "pg_reads.rb"),
            ruby("ActiveRecord", "activerecord_reads.rb"),
        ],
        no_extra,
        no_check,
    );
}

#[test]
fn perl_drivers() {
    require_perl();
    matrix(
        "perl",
        vec![Script {
            name: "DBI/DBD::Pg, DBIx::Class::Schema::Loader",
            program: "perl".into(),
            args: vec![path_arg("perl/dbd_pg_reads.pl")],
        }],
        no_extra,
        no_check,
    );
}

/// The dumps pg_dump.sh writes, by step.
const DUMPS: &[(&str, &str)] = &[
    ("pg_dump.schema_only", "schema_only.sql"),
    ("pg_dump.data_only", "data_only.sql"),
    ("pg_dump.custom_format", "custom_format.sql"),
    ("pg_dump.directory_parallel", "directory_parallel.sql"),
    ("pg_dumpall", "pg_dumpall.sql"),
];

/// A dump without what differs between two dumps of the same data: the
/// times of verbose dumps and the keys of `\restrict`.
fn normalized(dump: &str) -> Vec<&str> {
    dump.lines()
        .filter(|l| {
            !(l.starts_with("\\restrict ")
                || l.starts_with("\\unrestrict ")
                || l.starts_with("-- Started on ")
                || l.starts_with("-- Completed on "))
        })
        .collect()
}

/// Compares each dump taken through airlock with the direct one.
fn same_dumps(out: &Path) -> Vec<(String, Option<String>)> {
    let mut checks = Vec::new();
    for (step, file) in DUMPS {
        let name = format!("{step} same as direct");
        let direct = std::fs::read_to_string(out.join("direct").join(file))
            .unwrap_or_else(|e| panic!("direct {file}: {e}"));
        let via = match std::fs::read_to_string(out.join("airlock").join(file)) {
            Ok(s) => s,
            Err(_) => {
                checks.push((name, Some("no dump through airlock to compare".into())));
                continue;
            }
        };
        let (d, v) = (normalized(&direct), normalized(&via));
        let error = if d == v {
            None
        } else {
            let i = d.iter().zip(&v).take_while(|(a, b)| a == b).count();
            Some(format!(
                "differs from line {} on ({} lines against {} direct): airlock {:?}, direct {:?}",
                i + 1,
                v.len(),
                d.len(),
                v.get(i),
                d.get(i)
            ))
        };
        checks.push((name, error));
    }
    checks
}

#[test]
fn pg_dump_and_pg_dumpall() {
    require_dump_tools();
    let out = std::env::temp_dir().join(unique("airlock-dumps"));
    let script = Script {
        name: "pg_dump / pg_dumpall",
        program: "bash".into(),
        args: vec![path_arg("tools/pg_dump.sh")],
    };
    let dir = out.clone();
    let check_dir = out.clone();
    matrix(
        "dump tools",
        vec![script],
        move |_, way| vec![dir.join(way).to_string_lossy().into_owned()],
        move |_, _, _| same_dumps(&check_dir),
    );
    let _ = std::fs::remove_dir_all(&out);
}
