//! Where the driver matrix finds its drivers and tools, and the checks
//! that they are installed: a missing one fails the test with what to run
//! (`scripts/setup.sh`), as for pgjdbc.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::pg;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn drivers_dir() -> PathBuf {
    repo().join("tests/drivers")
}

/// The Python venv scripts/setup.sh makes (`AIRLOCK_DRIVERS_VENV` to use
/// another).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("AIRLOCK_DRIVERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/drivers-venv"));
    venv.join("bin/python")
}

/// Seconds each step of a script may take.
pub fn step_timeout() -> u64 {
    std::env::var("AIRLOCK_DRIVERS_STEP_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// How long one run of a script may take in all before it is killed.
pub fn run_timeout() -> Duration {
    Duration::from_secs(step_timeout() * 15)
}

/// Whether the reviewer approves held requests instead of rejecting them.
pub fn approving() -> bool {
    std::env::var("AIRLOCK_DRIVERS_REVIEW").as_deref() == Ok("approve")
}

pub const SETUP: &str = "run scripts/setup.sh (it installs the drivers of the matrix)";

/// Runs `program args`, true if it exits 0.
pub fn succeeds(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Fails the test, saying what to install, unless `program args` runs.
pub fn require(program: &Path, args: &[&str], what: &str) {
    assert!(
        succeeds(program, args),
        "{what} is missing ({} {} did not run): {SETUP}",
        program.display(),
        args.join(" ")
    );
}

pub fn require_python() {
    let python = venv_python();
    assert!(python.exists(), "{} is missing: {SETUP}", python.display());
    require(
        &python,
        &[
            "-c",
            "import asyncpg, psycopg, psycopg2, sqlalchemy, django",
        ],
        "asyncpg, psycopg, psycopg2, SQLAlchemy or Django in the venv",
    );
}

pub fn require_node() {
    require(Path::new("node"), &["--version"], "node");
    let modules = drivers_dir().join("node/node_modules");
    for m in [
        "pg",
        "pg-cursor",
        "pg-query-stream",
        "pg-hstore",
        "postgres",
        "knex",
        "sequelize",
    ] {
        assert!(
            modules.join(m).join("package.json").exists(),
            "npm package {m} is missing from {}: {SETUP}",
            modules.display()
        );
    }
}

pub fn require_ruby() {
    require(
        Path::new("ruby"),
        &["-e", "require 'pg'; require 'active_record'"],
        "ruby with ruby-pg and ruby-activerecord",
    );
}

pub fn require_perl() {
    require(
        Path::new("perl"),
        &["-MDBD::Pg", "-MDBIx::Class::Schema::Loader", "-e", "1"],
        "perl with libdbd-pg-perl and libdbix-class-schema-loader-perl",
    );
}

/// Where the cluster's own client tools are (pg_dump of the server's
/// version), if psql was found there.
pub fn pg_bindir() -> Option<PathBuf> {
    let dir = pg().psql.parent()?.to_path_buf();
    dir.join("pg_dump").is_file().then_some(dir)
}

pub fn pg_tool(name: &str) -> PathBuf {
    pg_bindir()
        .map(|d| d.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

pub fn require_dump_tools() {
    for tool in ["pg_dump", "pg_dumpall", "pg_restore"] {
        require(
            &pg_tool(tool),
            &["--version"],
            &format!("{tool} (postgresql-client)"),
        );
    }
    require(Path::new("timeout"), &["--version"], "timeout (coreutils)");
}
