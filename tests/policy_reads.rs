//! Reads that real clients send pass the shipped policy unheld, with
//! results identical to a direct connection: psql's describe commands
//! (stdout, stderr and exit code compared byte for byte) and tokio-postgres
//! reads in the simple and the extended protocol. A reviewer that rejects
//! every held request runs alongside, so that a read wrongly held fails
//! fast instead of waiting; at the end nothing may have been held.

mod common;

use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::lab::{shipped_proxy, Rejecter, DB};
use common::rawpg;
use common::*;
use tokio_postgres::SimpleQueryMessage;

/// One schema with a bit of everything psql describes, made once for the
/// whole binary before any test reads it (so that listings of all schemas
/// and relations do not change under a test).
fn schema() -> &'static str {
    static SCHEMA: OnceLock<String> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let s = unique("reads");
        let mut w = rawpg::Wire::open(
            format!("127.0.0.1:{}", pg().port).parse().unwrap(),
            "postgres",
            DB,
        );
        let msgs = w.simple(&format!(
            "CREATE SCHEMA {s};
             CREATE TYPE {s}.mood AS ENUM ('calm', 'busy');
             CREATE DOMAIN {s}.positive AS numeric CHECK (VALUE >= 0);
             CREATE TABLE {s}.accounts (
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 owner text NOT NULL,
                 balance {s}.positive DEFAULT 0,
                 mood {s}.mood,
                 opened date DEFAULT '2024-01-01'
             );
             CREATE INDEX accounts_owner_idx ON {s}.accounts (owner);
             COMMENT ON TABLE {s}.accounts IS 'money, held for review';
             COMMENT ON COLUMN {s}.accounts.owner IS 'who';
             CREATE TABLE {s}.entries (
                 account bigint REFERENCES {s}.accounts (id),
                 n int,
                 amount numeric(12, 2),
                 PRIMARY KEY (account, n)
             );
             CREATE VIEW {s}.rich AS SELECT * FROM {s}.accounts WHERE balance > 1000;
             CREATE MATERIALIZED VIEW {s}.totals AS
                 SELECT account, sum(amount) AS total FROM {s}.entries GROUP BY account;
             CREATE SEQUENCE {s}.ticket_seq;
             CREATE FUNCTION {s}.triple(x int) RETURNS int LANGUAGE sql IMMUTABLE
                 AS 'SELECT x * 3';
             INSERT INTO {s}.accounts (owner, balance, mood)
                 SELECT 'owner ' || g, g * 250, CASE WHEN g % 2 = 0 THEN 'calm' ELSE 'busy' END::{s}.mood
                 FROM generate_series(1, 12) g;
             INSERT INTO {s}.entries SELECT 1 + g % 12, g, g * 1.25 FROM generate_series(1, 40) g;
             REFRESH MATERIALIZED VIEW {s}.totals;
             ANALYZE {s}.accounts;"
        ));
        assert!(rawpg::first_error(&msgs).is_none(), "{msgs:?}");
        w.send(&rawpg::terminate());
        s
    })
}

/// psql with the schema first on the search path.
fn psql_at(port: u16, args: &[&str]) -> Output {
    Command::new(&pg().psql)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
        .arg("-p")
        .arg(port.to_string())
        .args(["-U", "postgres", "-d", DB])
        .args(args)
        .stdin(Stdio::null())
        .env("PGOPTIONS", format!("-c search_path={},public", schema()))
        .env_remove("PGPASSWORD")
        .output()
        .expect("run psql")
}

#[test]
fn psql_describe_commands_match_a_direct_connection() {
    let s = schema();
    let proxy = shipped_proxy();
    let reviewer = Rejecter::start(proxy.admin);
    let commands = [
        "\\d".to_string(),
        "\\dt".into(),
        "\\dt+".into(),
        "\\d accounts".into(),
        "\\d+ accounts".into(),
        format!("\\d+ {s}.entries"),
        "\\d+ rich".into(),
        "\\d+ totals".into(),
        "\\d ticket_seq".into(),
        "\\dv".into(),
        "\\dm".into(),
        "\\di".into(),
        "\\ds".into(),
        format!("\\df {s}.*"),
        format!("\\df+ {s}.*"),
        "\\df pg_catalog.lower".into(),
        "\\dn".into(),
        format!("\\dn+ {s}"),
        "\\du".into(),
        "\\du+".into(),
        "\\dg".into(),
        "\\l".into(),
        "\\dT".into(),
        "\\dT+ mood".into(),
        "\\dD".into(),
        "\\dp".into(),
        format!("\\dd {s}.*"),
        "\\dx".into(),
        "\\dconfig work_mem".into(),
        "\\sf triple".into(),
        "\\sv rich".into(),
        "\\dC int4".into(),
        "\\do ||".into(),
        "\\dRp".into(),
        "\\dy".into(),
        "\\dL".into(),
    ];
    let mut differences = Vec::new();
    for cmd in &commands {
        let via = psql_at(proxy.port(), &["-c", cmd]);
        let direct = psql_at(pg().port, &["-c", cmd]);
        if !direct.status.success() {
            panic!(
                "{cmd} fails directly: {}",
                String::from_utf8_lossy(&direct.stderr)
            );
        }
        if (via.status.code(), &via.stdout, &via.stderr)
            != (direct.status.code(), &direct.stdout, &direct.stderr)
        {
            differences.push(format!(
                "{cmd}:\n  via proxy ({}): {}{}\n  direct ({}): {}{}",
                via.status,
                String::from_utf8_lossy(&via.stdout),
                String::from_utf8_lossy(&via.stderr),
                direct.status,
                String::from_utf8_lossy(&direct.stdout),
                String::from_utf8_lossy(&direct.stderr),
            ));
        }
    }
    // A few things people type, as one psql script.
    let script = "SELECT owner, balance FROM accounts ORDER BY id LIMIT 3;
                  \\x on
                  SELECT * FROM rich ORDER BY id LIMIT 1;
                  \\x off
                  SELECT count(*), sum(amount) FROM entries \\gset
                  \\echo :count :sum
                  SELECT * FROM accounts WHERE id = 1 \\gdesc
                  EXPLAIN (COSTS off) SELECT * FROM accounts WHERE owner = 'x';
                  TABLE totals ORDER BY account LIMIT 2;";
    let file = std::env::temp_dir().join(format!("{}.sql", unique("airlock-reads")));
    std::fs::write(&file, script).unwrap();
    let file_arg = file.to_string_lossy().into_owned();
    let via = psql_at(proxy.port(), &["-f", &file_arg]);
    let direct = psql_at(pg().port, &["-f", &file_arg]);
    let _ = std::fs::remove_file(&file);
    assert!(direct.status.success(), "{direct:?}");
    if (via.status.code(), &via.stdout, &via.stderr)
        != (direct.status.code(), &direct.stdout, &direct.stderr)
    {
        differences.push(format!("script:\n  via: {via:?}\n  direct: {direct:?}"));
    }
    let held = reviewer.held.lock().unwrap().clone();
    assert!(
        differences.is_empty() && held.is_empty(),
        "{} of {} psql commands differ through the proxy:\n{}\n\nheld: {held:#?}",
        differences.len(),
        commands.len() + 1,
        differences.join("\n")
    );
}

/// Rows (as text) and command tags of a simple-query result.
fn summary(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            SimpleQueryMessage::CommandComplete(n) => Some(format!("complete {n}")),
            _ => None,
        })
        .collect()
}

/// Reads as applications and tools send them, in both protocols.
const READS: &[&str] = &[
    "SELECT * FROM accounts ORDER BY id",
    "SELECT owner, balance::text FROM accounts WHERE id = 3",
    "TABLE totals ORDER BY account",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT a.owner, count(e.*), sum(e.amount)::text FROM accounts a
     LEFT JOIN entries e ON e.account = a.id GROUP BY a.owner ORDER BY 1",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5)
     SELECT string_agg(n::text, ',') FROM r",
    "SELECT id, rank() OVER (ORDER BY balance DESC) FROM accounts ORDER BY id",
    "SELECT * FROM rich ORDER BY id",
    "SELECT currval('ticket_seq') IS NULL FROM (SELECT 1) x WHERE false",
    "SELECT last_value, is_called FROM ticket_seq",
    "SELECT lower(owner), upper(owner), length(owner), md5(owner) FROM accounts ORDER BY id",
    "SELECT jsonb_build_object('id', id, 'mood', mood)::text FROM accounts ORDER BY id",
    "SELECT relname, relkind::text FROM pg_class
     WHERE relnamespace = current_schema()::regnamespace ORDER BY 1",
    "SELECT table_name, column_name, data_type FROM information_schema.columns
     WHERE table_schema = current_schema() ORDER BY 1, 2",
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
     WHERE connamespace = current_schema()::regnamespace ORDER BY 1",
    "SELECT pg_get_viewdef('rich'::regclass, true)",
    "SELECT pg_get_functiondef('triple'::regproc)",
    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
     WHERE attrelid = 'accounts'::regclass AND attnum > 0 ORDER BY attnum",
    "SELECT current_user, session_user, current_database(), current_schema()",
    "SELECT current_setting('search_path'), current_setting('DateStyle')",
    "SHOW search_path",
    "SHOW server_version_num",
    "SELECT version() LIKE 'PostgreSQL%'",
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND false",
    "EXPLAIN (COSTS off) SELECT * FROM accounts WHERE owner = 'owner 1'",
    "SELECT 1 FROM accounts WHERE id = 1 AND EXISTS (SELECT 1 FROM entries WHERE account = 1)",
];

/// The bytes of a COPY ... TO STDOUT.
async fn copy_out(c: &tokio_postgres::Client, sql: &str) -> Result<Vec<u8>, tokio_postgres::Error> {
    use futures_util::TryStreamExt;
    let stream = c.copy_out(sql).await?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    Ok(chunks.concat())
}

#[tokio::test]
async fn tokio_postgres_reads_match_a_direct_connection_in_both_protocols() {
    let s = schema();
    let proxy = shipped_proxy();
    let reviewer = Rejecter::start(proxy.admin);
    let options = format!(" options='-c search_path={s}'");
    let via = connect(&format!("{}{options}", proxy.conninfo("postgres", DB))).await;
    let direct = connect(&format!("{}{options}", direct_conninfo("postgres", DB))).await;
    let mut differences = Vec::new();
    for sql in READS {
        let a = via.simple_query(sql).await.map(|m| summary(&m));
        let b = direct.simple_query(sql).await.map(|m| summary(&m));
        let b = b.unwrap_or_else(|e| panic!("{sql} fails directly: {e}"));
        match a {
            Ok(a) if a == b => {}
            other => differences.push(format!("[simple] {sql}: {other:?}\n  direct: {b:?}")),
        }
        // The extended protocol, with every column as text.
        let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) q");
        if sql.starts_with("SELECT") || sql.starts_with("VALUES") || sql.starts_with("TABLE") {
            let rows = |r: Vec<tokio_postgres::Row>| -> Vec<String> {
                r.iter().map(|r| r.get::<_, String>(0)).collect()
            };
            let a = via.query(&wrapped, &[]).await.map(rows);
            let b = direct
                .query(&wrapped, &[])
                .await
                .map(rows)
                .unwrap_or_else(|e| panic!("{wrapped} fails directly: {e}"));
            match a {
                Ok(a) if a == b => {}
                other => differences.push(format!("[extended] {sql}: {other:?}\n  direct: {b:?}")),
            }
        }
    }
    // Parameters of several types, statements prepared once and run again.
    let by_id = via
        .prepare("SELECT owner, balance::text, mood::text FROM accounts WHERE id = $1")
        .await
        .expect("prepare through the proxy");
    let by_id_direct = direct
        .prepare("SELECT owner, balance::text, mood::text FROM accounts WHERE id = $1")
        .await
        .unwrap();
    for id in [1i64, 5, 12, 99] {
        let text = |rows: Vec<tokio_postgres::Row>| -> Vec<(String, String, String)> {
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        };
        let a = via.query(&by_id, &[&id]).await.map(text);
        let b = text(direct.query(&by_id_direct, &[&id]).await.unwrap());
        match a {
            Ok(a) if a == b => {}
            other => differences.push(format!("[prepared] id {id}: {other:?} vs {b:?}")),
        }
    }
    let params = "SELECT count(*) FROM accounts
                  WHERE id = ANY($1) AND owner LIKE $2 AND balance >= $3::text::numeric";
    let ids: Vec<i64> = vec![1, 2, 3, 4];
    let a = via
        .query_one(params, &[&ids, &"owner%", &"500"])
        .await
        .map(|r| r.get::<_, i64>(0));
    let b: i64 = direct
        .query_one(params, &[&ids, &"owner%", &"500"])
        .await
        .unwrap()
        .get(0);
    if a.as_ref().ok() != Some(&b) {
        differences.push(format!("[params] {a:?} vs {b}"));
    }
    // A read-only transaction with a cursor, as reporting tools do.
    let cursor = "BEGIN READ ONLY;
                  DECLARE c CURSOR FOR SELECT id, owner FROM accounts ORDER BY id;
                  FETCH 3 FROM c; FETCH 2 FROM c; CLOSE c; COMMIT";
    let a = via.simple_query(cursor).await.map(|m| summary(&m));
    let b = summary(&direct.simple_query(cursor).await.unwrap());
    match a {
        Ok(a) if a == b => {}
        other => differences.push(format!("[cursor] {other:?} vs {b:?}")),
    }
    // COPY out of a table and of a query.
    for copy in [
        "COPY accounts TO STDOUT",
        "COPY (SELECT * FROM entries ORDER BY account, n) TO STDOUT (FORMAT csv, HEADER)",
    ] {
        let a = copy_out(&via, copy).await;
        let b = copy_out(&direct, copy).await.unwrap();
        match a {
            Ok(a) if a == b => {}
            other => differences.push(format!("[{copy}] {other:?}")),
        }
    }
    let held = reviewer.held.lock().unwrap().clone();
    assert!(
        differences.is_empty() && held.is_empty(),
        "reads differ through the proxy:\n{}\n\nheld: {held:#?}",
        differences.join("\n")
    );
}

/// pgjdbc's DatabaseMetaData, as DBeaver and DataGrip use it on connect and
/// when opening a schema: every answer through the proxy equals the direct
/// one, and nothing is held. `tests/java/JdbcCompat.java --metadata-dump` is
/// compiled as in `pgjdbc.rs`.
#[test]
fn pgjdbc_database_metadata_matches_a_direct_connection() {
    const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";
    let s = schema();
    assert!(
        std::path::Path::new(JDBC_JAR).exists(),
        "{JDBC_JAR} is missing: install libpostgresql-jdbc-java (scripts/setup.sh)"
    );
    let classes = std::env::temp_dir().join(unique("airlock-jdbc-reads"));
    std::fs::create_dir_all(&classes).unwrap();
    let source =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/JdbcCompat.java");
    let javac = Command::new("javac")
        .args(["-encoding", "UTF-8", "-cp", JDBC_JAR, "-d"])
        .arg(&classes)
        .arg(&source)
        .output()
        .expect("run javac (install a JDK 17)");
    assert!(
        javac.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&javac.stderr)
    );
    let proxy = shipped_proxy();
    let reviewer = Rejecter::start(proxy.admin);
    let dump = |port: u16| {
        Command::new("java")
            .arg("-cp")
            .arg(format!("{}:{JDBC_JAR}", classes.display()))
            .args(["JdbcCompat", "--metadata-dump", &port.to_string(), DB, s])
            .output()
            .expect("run java")
    };
    let direct = dump(pg().port);
    let via = dump(proxy.port());
    let _ = std::fs::remove_dir_all(&classes);
    assert!(
        direct.status.success(),
        "direct: {}",
        String::from_utf8_lossy(&direct.stderr)
    );
    let direct_out = String::from_utf8_lossy(&direct.stdout);
    assert!(
        direct_out.lines().count() > 100 && direct_out.contains("tables: | null | "),
        "a thin dump: {direct_out}"
    );
    let via_out = String::from_utf8_lossy(&via.stdout);
    let held = reviewer.held.lock().unwrap().clone();
    assert!(
        via.status.success() && via_out == direct_out && held.is_empty(),
        "through the proxy ({}):\n{}\n{}\nheld: {held:#?}\ndiffering lines: {:#?}",
        via.status,
        via_out.lines().take(5).collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&via.stderr),
        via_out
            .lines()
            .zip(direct_out.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .collect::<Vec<_>>()
    );
}

/// `set_config()` with constant arguments is the SET it performs: what
/// drivers and pg_dump send on connect runs unheld and takes effect, in
/// both protocols; changing identity or the read-only settings that way is
/// denied as SET is; and a set_config that also reads a table, or whose
/// arguments are not constants, is not a read (the reviewer rejects it).
#[tokio::test]
async fn set_config_is_judged_as_the_set_it_performs() {
    let s = schema();
    let proxy = shipped_proxy();
    let reviewer = Rejecter::start(proxy.admin);
    let via = connect(&proxy.conninfo("postgres", DB)).await;
    let on_connect = [
        // asyncpg, before it introspects array and composite types.
        (
            "SELECT current_setting('jit') AS cur, set_config('jit', 'off', false) AS new",
            "jit",
            "off",
        ),
        // psycopg 3 and Django with time zones.
        (
            "SELECT set_config('TimeZone', 'UTC', false)",
            "TimeZone",
            "UTC",
        ),
        // pg_dump and pg_dumpall.
        (
            "SELECT pg_catalog.set_config('search_path', '', false)",
            "search_path",
            "",
        ),
        (
            "SELECT set_config('application_name', 'airlock-test', false)",
            "application_name",
            "airlock-test",
        ),
    ];
    for (sql, name, want) in on_connect {
        via.simple_query("RESET ALL").await.ok();
        via.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("[simple] {sql}: {e}"));
        let shown: String = via
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(shown, want, "after {sql}");
        via.query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("[extended] {sql}: {e}"));
    }
    for sql in [
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT set_config('role', 'postgres', false)",
        "SELECT set_config('search_path', 'public, pg_catalog', false)",
        "SELECT set_config('session_replication_role', 'replica', false)",
    ] {
        let e = via.simple_query(sql).await.expect_err(sql);
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
    }
    assert!(
        reviewer.held.lock().unwrap().is_empty(),
        "nothing above is held"
    );
    let sql = format!("SELECT set_config('jit', 'off', false), owner FROM {s}.accounts");
    via.simple_query(&sql).await.expect_err(&sql);
    let held = reviewer.held.lock().unwrap().clone();
    assert_eq!(held.len(), 1, "held: {held:#?}");
    // A name that is not a constant may be any setting, read-only ones
    // included: refused as SET of them is, without a review.
    let sql = "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name LIKE 'jit'";
    let e = via.simple_query(sql).await.expect_err(sql);
    assert_eq!(
        e.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{sql}: {e}"
    );
    assert_eq!(reviewer.held.lock().unwrap().len(), 1, "not held");
}
