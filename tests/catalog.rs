//! The catalog of user code (src/catalog): what the text of a statement does
//! not show is found in the upstream's catalog, kept current, and a read
//! that reaches user code is not a read.
//!
//! Each test has a database of its own and a policy that allows proven
//! reads, DDL, transaction control and settings, and denies everything else
//! at once (42501), so that a denial means "not proven a read".

mod common;

use std::time::Duration;

use airlock::policy::Policy;
use airlock::Config;
use common::http::call;
use common::*;
use tokio_postgres::Client;

const TOKEN: &str = "catalog-token-0000000000";

const POLICY: &str = r#"
[[rule]]
name = "reads"
kind = ["read"]
action = "allow"

[[rule]]
name = "ddl"
kind = ["ddl"]
action = "allow"

[[rule]]
name = "transactions"
kind = ["transaction", "session"]
action = "allow"

[[rule]]
name = "do-blocks"
command = ["DO"]
action = "allow"

[[rule]]
name = "inserts-into-logged"
command = ["INSERT"]
tables = ["logged"]
action = "allow"

[[rule]]
name = "not-a-read"
action = "deny"
message = "not proven a read"
"#;

/// A fresh database with a table of rows, and a direct connection to it.
async fn fresh_db() -> (String, Client) {
    let name = unique("cat");
    connect(&direct_conninfo("postgres", "airlock_test"))
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let direct = connect(&direct_conninfo("postgres", &name)).await;
    direct
        .batch_execute(
            "CREATE TABLE t (id int PRIMARY KEY, v text);
             INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 5) g;
             CREATE FUNCTION grab(t) RETURNS int VOLATILE LANGUAGE sql
                 AS $$ SELECT 1 FROM pg_advisory_lock(7001) $$;",
        )
        .await
        .expect("setup");
    (name, direct)
}

fn proxy(poll: Duration, f: impl FnOnce(&mut Config)) -> TestProxy {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone());
    config.catalog_poll = poll;
    config.reviewers = vec![reviewer("ops", TOKEN, &["reviewers"], &[])];
    f(&mut config);
    let policy = Policy::from_sources(&[("catalog.toml", POLICY)]).expect("policy");
    TestProxy::with_policy(config, Some(policy))
}

/// Denied as not a read, in the simple and the extended protocol.
async fn denied(client: &Client, sql: &str) {
    let e = client
        .simple_query(sql)
        .await
        .expect_err(&format!("{sql} ran"));
    assert_eq!(code(&e), "42501", "{sql}: {e}");
    let e = client
        .query(sql, &[])
        .await
        .expect_err(&format!("{sql} ran (extended)"));
    assert_eq!(code(&e), "42501", "{sql} (extended): {e}");
}

/// Runs, in both protocols.
async fn allowed(client: &Client, sql: &str) {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql} (extended): {e}"));
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code()
        .map_or_else(|| format!("no SQLSTATE: {e}"), |c| c.code().to_string())
}

/// Advisory locks held in this database: what the planted user code takes.
async fn advisory_locks(direct: &Client) -> i64 {
    direct
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// No advisory lock was taken by anyone: the user code never ran.
async fn no_locks(direct: &Client) {
    assert_eq!(advisory_locks(direct).await, 0, "user code ran");
}

#[tokio::test]
async fn ddl_through_airlock_is_seen_at_once_by_every_session() {
    let (db, direct) = fresh_db().await;
    // No polling during the test: only the sessions' own reports count.
    let proxy = proxy(Duration::from_secs(3600), |_| {});
    let a = proxy.connect("postgres", &db).await;
    let b = proxy.connect("postgres", &db).await;
    allowed(&b, "SELECT x.v FROM t x").await;
    denied(&b, "SELECT x.grab FROM t x").await;
    a.batch_execute(
        "CREATE FUNCTION take(t) RETURNS int VOLATILE LANGUAGE sql
             AS $$ SELECT 1 FROM pg_advisory_lock(7002) $$;
         CREATE VIEW taken AS SELECT x.id, take(x) FROM t x;
         CREATE VIEW plain AS SELECT id FROM t",
    )
    .await
    .expect("DDL through airlock");
    for c in [&a, &b] {
        denied(c, "SELECT x.take FROM t x").await;
        denied(c, "SELECT (x).take FROM t x").await;
        denied(c, "SELECT * FROM taken").await;
        denied(c, "SELECT id FROM public.taken WHERE id = 1").await;
        allowed(c, "SELECT * FROM plain").await;
        allowed(c, "SELECT x.id FROM t x").await;
    }
    // A view that was harmless and no longer is.
    a.batch_execute("CREATE OR REPLACE VIEW plain AS SELECT id FROM t WHERE take(t) > 0")
        .await
        .expect("replace the view");
    denied(&b, "SELECT * FROM plain").await;
    no_locks(&direct).await;
}

#[tokio::test]
async fn a_session_waits_while_another_changes_the_catalog() {
    let (db, direct) = fresh_db().await;
    let proxy = proxy(Duration::from_secs(3600), |_| {});
    let a = proxy.connect("postgres", &db).await;
    let b = proxy.connect("postgres", &db).await;
    allowed(&b, "SELECT 1 FROM t").await;
    // A creates a function, then works on before it commits.
    const CHANGE: &str = "DO $$ BEGIN
                 CREATE FUNCTION late(t) RETURNS int VOLATILE LANGUAGE sql
                     AS 'SELECT 1 FROM pg_advisory_lock(7007)';
                 PERFORM pg_sleep(0.5);
             END $$";
    let changing = tokio::spawn(async move { a.batch_execute(CHANGE).await });
    // B's statement comes once A's is running on the server.
    until_running(None, CHANGE).await;
    // Judged now against the old catalog, this would be forwarded as a read
    // and fail in PostgreSQL (42703: no such column yet). B waits for A
    // instead, and is judged against the catalog that has `late`.
    let e = b.simple_query("SELECT x.late FROM t x").await.unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");
    changing.await.unwrap().expect("the DO block");
    denied(&b, "SELECT x.late FROM t x").await;
    no_locks(&direct).await;
}

#[tokio::test]
async fn a_transaction_that_changed_the_catalog_proves_no_read_that_names_anything() {
    let (db, direct) = fresh_db().await;
    let proxy = proxy(Duration::from_secs(3600), |_| {});
    let c = proxy.connect("postgres", &db).await;
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute(
        "CREATE FUNCTION hidden(t) RETURNS int VOLATILE LANGUAGE sql
             AS $$ SELECT 1 FROM pg_advisory_lock(7003) $$",
    )
    .await
    .unwrap();
    // No other connection can see `hidden` yet: nothing that names
    // anything is proven a read until the transaction ends.
    let e = c
        .simple_query("SELECT x.hidden FROM t x")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");
    c.batch_execute("ROLLBACK").await.unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("CREATE TABLE scratch (n int)")
        .await
        .unwrap();
    let e = c.simple_query("SELECT * FROM t").await.unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");
    c.batch_execute("ROLLBACK").await.unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    allowed(&c, "SELECT 1").await;
    c.batch_execute("CREATE TABLE scratch (n int)")
        .await
        .unwrap();
    allowed(&c, "SELECT 2").await;
    c.batch_execute("COMMIT").await.unwrap();
    // Once it has ended, reads are proven again against a new snapshot.
    allowed(&c, "SELECT * FROM t").await;
    allowed(&c, "SELECT * FROM scratch").await;
    no_locks(&direct).await;
}

#[tokio::test]
async fn changes_made_past_airlock_are_found_by_polling() {
    let (db, direct) = fresh_db().await;
    let proxy = proxy(Duration::from_millis(100), |_| {});
    let c = proxy.connect("postgres", &db).await;
    allowed(&c, "SELECT * FROM t").await;
    direct
        .batch_execute(
            "CREATE FUNCTION guard(int) RETURNS bool VOLATILE LANGUAGE sql
                 AS $$ SELECT pg_try_advisory_lock(7004) $$;
             ALTER TABLE t ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p ON t USING (guard(id));
             CREATE DOMAIN checked AS int CHECK (guard(VALUE));
             CREATE TABLE safe_rls (id int);
             ALTER TABLE safe_rls ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p ON safe_rls USING (id > 0);",
        )
        .await
        .unwrap();
    proxy.catalog_caught_up(&direct, &db).await;
    denied(&c, "SELECT * FROM t").await;
    denied(&c, "SELECT 1::checked").await;
    denied(&c, "SELECT CAST('1' AS public.checked)").await;
    denied(&c, "SELECT '{1}'::checked[]").await;
    allowed(&c, "SELECT * FROM safe_rls").await;
    no_locks(&direct).await;
    // The admin API shows what the proxy holds for the database.
    let (status, body) = call(proxy.admin, "GET", "/api/v1/catalogs", Some(TOKEN), None);
    assert_eq!(status, 200, "{body}");
    let entry = body["items"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["database"] == db.as_str()))
        .unwrap_or_else(|| panic!("{db} missing: {body}"))
        .clone();
    assert_eq!(entry["state"], "current", "{entry}");
    let names: Vec<&str> = entry["user_code"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for want in [
        "relation public.t",
        "type public.checked",
        "function public.guard",
    ] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    assert!(!names.contains(&"relation public.safe_rls"), "{names:?}");
    // The first load and at least the one after the change.
    let (_, _, metrics) = common::http::raw(proxy.admin, "GET", "/metrics", &[], None);
    let loads: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("airlock_catalog_loads_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no catalog loads in {metrics}"));
    assert!(loads >= 2, "{loads} loads");
}

#[tokio::test]
async fn parameters_of_a_checked_domain_type_are_user_code() {
    let (db, direct) = fresh_db().await;
    direct
        .batch_execute(
            "CREATE FUNCTION guard(int) RETURNS bool VOLATILE LANGUAGE sql
                 AS $$ SELECT pg_try_advisory_lock(7005) $$;
             CREATE DOMAIN checked AS int CHECK (guard(VALUE));
             CREATE TABLE holder (id int, c checked);",
        )
        .await
        .unwrap();
    let proxy = proxy(Duration::from_secs(3600), |_| {});
    let c = proxy.connect("postgres", &db).await;
    let oid: u32 = direct
        .query_one("SELECT 'checked'::regtype::oid", &[])
        .await
        .unwrap()
        .get(0);
    let checked = tokio_postgres::types::Type::new(
        "checked".into(),
        oid,
        tokio_postgres::types::Kind::Domain(tokio_postgres::types::Type::INT4),
        "public".into(),
    );
    // Binding a parameter of the domain's type runs the CHECK.
    let e = c.prepare_typed("SELECT $1", &[checked]).await.unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");
    // So does one whose type the server infers from a column.
    let e = c
        .prepare("SELECT id FROM t WHERE id = (SELECT count(*) FROM holder WHERE c = $1)")
        .await
        .unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");
    allowed(&c, "SELECT id FROM t WHERE id = 1").await;
    no_locks(&direct).await;
}

#[tokio::test]
async fn a_prepared_statement_is_judged_again_when_the_catalog_has_changed() {
    let (db, direct) = fresh_db().await;
    let proxy = proxy(Duration::from_secs(3600), |_| {});
    let c = proxy.connect("postgres", &db).await;
    c.batch_execute("CREATE VIEW v AS SELECT id FROM t")
        .await
        .unwrap();
    let statement = c.prepare("SELECT * FROM v").await.unwrap();
    assert_eq!(c.query(&statement, &[]).await.unwrap().len(), 5);
    c.batch_execute("CREATE OR REPLACE VIEW v AS SELECT id FROM t x WHERE grab(x) = 1")
        .await
        .unwrap();
    let e = c.query(&statement, &[]).await.unwrap_err();
    assert_eq!(code(&e), "42501", "{e}");
    no_locks(&direct).await;
}

#[tokio::test]
async fn extensions_casts_and_foreign_tables() {
    let (db, direct) = fresh_db().await;
    direct
        .batch_execute(
            "CREATE EXTENSION pgcrypto;
             CREATE EXTENSION file_fdw;
             CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
             CREATE FOREIGN TABLE lines (line text) SERVER files OPTIONS (filename '/dev/null');
             CREATE TYPE mood AS ENUM ('calm', 'busy');
             CREATE FUNCTION mood_text(mood) RETURNS text STABLE LANGUAGE sql
                 AS $$ SELECT 'x' FROM pg_advisory_lock(7006) $$;
             CREATE CAST (mood AS text) WITH FUNCTION mood_text(mood);
             CREATE TABLE moods (id int, m mood);
             CREATE TABLE plain_moods (id int);",
        )
        .await
        .unwrap();
    let proxy = proxy(Duration::from_secs(3600), |_| {});
    let c = proxy.connect("postgres", &db).await;
    // pgcrypto's digest is immutable: an extension's word is taken.
    allowed(&c, "SELECT digest('a', 'sha256')").await;
    allowed(&c, "SELECT public.digest('a', 'sha256')").await;
    // gen_salt is volatile.
    denied(&c, "SELECT gen_salt('bf')").await;
    // A foreign table's scan runs its wrapper.
    denied(&c, "SELECT * FROM lines").await;
    // A cast that calls a volatile function.
    denied(&c, "SELECT m::text FROM moods").await;
    denied(&c, "SELECT 'calm'::mood").await;
    allowed(&c, "SELECT * FROM plain_moods").await;
    no_locks(&direct).await;
}

#[tokio::test]
async fn an_unreadable_catalog_fails_closed() {
    let (db, _direct) = fresh_db().await;
    let proxy = proxy(Duration::from_millis(200), |c| {
        c.catalog = Some("host=127.0.0.1 port=1 user=nobody".into());
    });
    let c = proxy.connect("postgres", &db).await;
    allowed(&c, "SELECT 1").await;
    denied(&c, "SELECT * FROM t").await;
    denied(&c, "SELECT lower('A')").await;
    let status = proxy.proxy.catalogs.status();
    let entry = status.iter().find(|s| s.database == db).expect("listed");
    assert_eq!(entry.state, "unavailable", "{entry:?}");
    assert!(entry.error.is_some(), "{entry:?}");
}

#[tokio::test]
async fn policy_check_takes_a_catalog_into_account() {
    let (db, _direct) = fresh_db().await;
    let check = |catalog: Option<String>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"));
        cmd.args(["policy", "check", "--user", "app", "--database", &db]);
        if let Some(c) = catalog {
            cmd.args(["--catalog", &c]);
        }
        let out = cmd
            .arg("SELECT x.grab FROM t x")
            .output()
            .expect("run airlock");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    // The text alone: a qualified column, a read.
    let alone = check(None);
    assert_eq!(alone["decision"]["decision"], "allow", "{alone}");
    // With the catalog: grab(t) is a volatile user function.
    let with = check(Some(direct_conninfo("postgres", &db)));
    assert_ne!(with["decision"]["decision"], "allow", "{with}");
    let s = &with["facts"]["statements"][0];
    assert!(
        s["functions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "public.grab"),
        "{with}"
    );
    assert!(
        s["risks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "unknown_function"),
        "{with}"
    );
}

/// airlock's own reads of the catalog run no user code: a superuser may
/// create casts to text that PostgreSQL otherwise does as I/O conversion
/// (`||` with a number, `::text` of an OID type or an array), and the
/// loader's fingerprint and baseline queries must not call them.
#[tokio::test]
async fn the_catalog_loader_runs_no_planted_cast() {
    let (db, direct) = fresh_db().await;
    let mut planted = String::new();
    for (i, (ty, out)) in [
        ("int8", "int8out"),
        ("xid", "xidout"),
        ("regtype", "regtypeout"),
        ("regprocedure", "regprocedureout"),
        ("regoperator", "regoperatorout"),
        ("\"char\"[]", "array_out"),
        ("text[]", "array_out"),
        ("regtype[]", "array_out"),
        ("oid[]", "array_out"),
    ]
    .iter()
    .enumerate()
    {
        planted.push_str(&format!(
            "CREATE FUNCTION planted_{i}(x {ty}) RETURNS text LANGUAGE plpgsql AS $$
                 BEGIN PERFORM pg_advisory_lock(7100 + {i}); RETURN pg_catalog.textin(pg_catalog.{out}(x)); END $$;
             CREATE CAST ({ty} AS text) WITH FUNCTION planted_{i}({ty});\n"
        ));
    }
    direct.batch_execute(&planted).await.expect("plant casts");
    // The planted casts do run where PostgreSQL converts these types.
    let locked: bool = direct
        .query_one(
            "SELECT length('n=' || 42::int8) > 0
                AND EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(locked, "the planted cast did not run direct");
    direct
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .unwrap();
    let proxy = proxy(Duration::from_millis(100), |_| {});
    let c = proxy.connect("postgres", &db).await;
    proxy.catalog_caught_up(&direct, &db).await;
    // A few polls.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.simple_query("SELECT 1").await.unwrap();
    no_locks(&direct).await;
}

/// A write whose trigger ran user code asks for a new snapshot. When that
/// code changed nothing a snapshot holds, the catalog's fingerprint shows
/// it and nothing is loaded; when it made a temporary view that shadows a
/// name, the new snapshot has it and a read of the name is no read.
#[tokio::test]
async fn a_write_that_ran_user_code_reloads_only_what_it_changed() {
    let (db, direct) = fresh_db().await;
    direct
        .batch_execute(
            "CREATE VIEW plain AS SELECT id FROM t;
             CREATE TABLE logged (id int, shadow bool DEFAULT false);
             CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.shadow THEN
                   EXECUTE 'CREATE TEMP VIEW plain AS
                            SELECT x.id FROM public.t x WHERE public.grab(x) > 0';
                 END IF;
                 RETURN NEW;
               END $$;
             CREATE TRIGGER note BEFORE INSERT ON logged FOR EACH ROW EXECUTE FUNCTION note();",
        )
        .await
        .expect("setup");
    let proxy = proxy(Duration::from_secs(3600), |_| {});
    let metrics = std::sync::Arc::clone(&proxy.proxy.metrics);
    let count = |m: &std::sync::atomic::AtomicU64| m.load(std::sync::atomic::Ordering::SeqCst);
    let a = proxy.connect("postgres", &db).await;
    // The session's temporary schema exists before the trigger's view.
    a.batch_execute("CREATE TEMP TABLE scratch (x int)")
        .await
        .expect("a temporary table");
    allowed(&a, "SELECT * FROM plain").await;
    let (loads, unchanged) = (
        count(&metrics.catalog_loads),
        count(&metrics.catalog_unchanged),
    );

    a.simple_query("INSERT INTO logged VALUES (1)")
        .await
        .expect("an allowed insert");
    allowed(&a, "SELECT * FROM plain").await;
    assert_eq!(
        count(&metrics.catalog_loads),
        loads,
        "nothing changed, nothing loaded"
    );
    assert_eq!(count(&metrics.catalog_unchanged), unchanged + 1);

    a.simple_query("INSERT INTO logged VALUES (2, true)")
        .await
        .expect("an allowed insert whose trigger shadows a view");
    denied(&a, "SELECT * FROM plain").await;
    assert_eq!(
        count(&metrics.catalog_loads),
        loads + 1,
        "the temporary view is loaded"
    );
    no_locks(&direct).await;

    // Positive control: sent direct, the same sequence runs grab().
    let control = connect(&direct_conninfo("postgres", &db)).await;
    control
        .batch_execute("INSERT INTO logged VALUES (3, true); SELECT * FROM plain")
        .await
        .expect("direct");
    let n = advisory_locks(&direct).await;
    assert_eq!(n, 1, "direct, the shadowing view runs grab()");
}

/// The loader keeps the baseline rows of a load (what PostgreSQL ships:
/// most of a load's time) while what they are read from is unchanged. A
/// built-in replaced in place past airlock after that changes it: the
/// rows are read again, and the built-in is user code.
#[tokio::test]
async fn a_built_in_replaced_after_the_first_load_is_seen() {
    let (db, direct) = fresh_db().await;
    let proxy = proxy(Duration::from_millis(100), |_| {});
    let a = proxy.connect("postgres", &db).await;
    allowed(&a, "SELECT rpad('x', 3)").await;
    // A reload that keeps the baseline rows: a user's table changes none.
    a.batch_execute("CREATE TABLE other (id int)")
        .await
        .expect("DDL through airlock");
    allowed(&a, "SELECT rpad('x', 3)").await;
    direct
        .batch_execute(
            "CREATE OR REPLACE FUNCTION pg_catalog.rpad(text, integer) RETURNS text
                 LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_lock(7003); RETURN $1; END $$",
        )
        .await
        .expect("replace a built-in past airlock");
    proxy.catalog_caught_up(&direct, &db).await;
    denied(&a, "SELECT rpad('x', 3)").await;
    denied(&a, "SELECT id FROM t ORDER BY rpad(v, 9)").await;
    no_locks(&direct).await;
    // Positive control: direct, the replaced built-in runs.
    let control = connect(&direct_conninfo("postgres", &db)).await;
    control
        .batch_execute("SELECT rpad('x', 3)")
        .await
        .expect("direct");
    let n = advisory_locks(&direct).await;
    assert_eq!(n, 1, "direct, the replaced rpad ran");
}
