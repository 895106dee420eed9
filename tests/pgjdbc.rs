//! Client compatibility: pgjdbc, the driver of DBeaver and DataGrip, through
//! the real proxy. `tests/java/JdbcCompat.java` is compiled with javac at
//! test time against Debian's `libpostgresql-jdbc-java`; CI installs both,
//! so a missing javac or jar fails the test rather than skipping it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

/// Compiles the Java program into a fresh directory and returns it.
fn compile() -> PathBuf {
    assert!(
        Path::new(JDBC_JAR).exists(),
        "{JDBC_JAR} is missing: install libpostgresql-jdbc-java (scripts/setup.sh)"
    );
    let out = std::env::temp_dir().join(unique("airlock-jdbc"));
    std::fs::create_dir_all(&out).expect("create class dir");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/JdbcCompat.java");
    let javac = Command::new("javac")
        .args(["-encoding", "UTF-8", "-cp", JDBC_JAR, "-d"])
        .arg(&out)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run javac ({e}): install a JDK 17 (openjdk-17-jdk-headless)")
        });
    assert!(
        javac.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&javac.stderr)
    );
    out
}

#[test]
fn pgjdbc_metadata_prepared_batch_transactions() {
    let classes = compile();
    let proxy = TestProxy::start();
    let suffix = unique("t");
    let java = Command::new("java")
        .arg("-Dfile.encoding=UTF-8")
        .arg("-cp")
        .arg(format!("{}:{JDBC_JAR}", classes.display()))
        .arg("JdbcCompat")
        .args([&proxy.port().to_string(), "airlock_test", &suffix, PASSWORD])
        .output()
        .unwrap_or_else(|e| panic!("cannot run java ({e}): install a JRE 17"));
    let _ = std::fs::remove_dir_all(&classes);
    let stdout = String::from_utf8_lossy(&java.stdout);
    let stderr = String::from_utf8_lossy(&java.stderr);
    assert!(
        java.status.success(),
        "JdbcCompat failed ({}):\n{stdout}\n{stderr}",
        java.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    let checks: u32 = last
        .strip_prefix("JDBC OK ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected final line {last:?}:\n{stdout}\n{stderr}"));
    assert!(checks > 300, "only {checks} checks ran");
}
