//! The read-only backstop (docs/backstop.md): statements classified as reads
//! run where PostgreSQL itself refuses writes, so a policy that wrongly
//! vouches for a writing function as a read still cannot change data.

mod common;

use airlock::policy::Policy;
use common::*;

const SHIPPED: &str = include_str!("../policies/default.toml");

/// Creates a table with three rows and a volatile function that empties it.
fn victim(name: &str) {
    let c = format!(
        "CREATE TABLE {name} (id int); INSERT INTO {name} VALUES (1), (2), (3);
         GRANT ALL ON {name} TO PUBLIC;
         CREATE FUNCTION {name}_evil() RETURNS int LANGUAGE plpgsql AS
           $$ BEGIN DELETE FROM {name}; RETURN 1; END $$;"
    );
    let out = psql(pg().port, "postgres", "airlock_test", &["-qc", &c]);
    stdout_ok(&out);
}

fn rows(name: &str) -> i64 {
    let out = psql(
        pg().port,
        "postgres",
        "airlock_test",
        &["-Atc", &format!("select count(*) from {name}")],
    );
    stdout_ok(&out).trim().parse().unwrap()
}

/// The shipped policy plus a wrong promise: the evil function is a read.
fn trusting(name: &str) -> Policy {
    let trust = format!("[functions]\nread = [\"{name}_evil\"]\n");
    Policy::from_sources(&[("default.toml", SHIPPED), ("trust.toml", &trust)]).unwrap()
}

fn code(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

#[tokio::test]
async fn a_writing_function_vouched_for_as_a_read_is_refused_by_postgres() {
    let t = unique("bs_victim");
    victim(&t);
    let proxy = TestProxy::with_policy(
        airlock::Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone()),
        Some(trusting(&t)),
    );
    let c = proxy.connect("postgres", "airlock_test").await;

    // Simple protocol: the policy lets it through as a read ...
    let err = c
        .simple_query(&format!("SELECT {t}_evil()"))
        .await
        .unwrap_err();
    // ... and PostgreSQL refuses the write inside it.
    assert_eq!(code(&err), "25006", "{err:?}");
    assert_eq!(rows(&t), 3);

    // Extended protocol, and inside a WHERE clause.
    let err = c
        .query(&format!("SELECT * FROM {t} WHERE id = {t}_evil()"), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "25006", "{err:?}");
    assert_eq!(rows(&t), 3);

    // The session is fine, and plain reads work.
    let n: i64 = c
        .query_one(&format!("SELECT count(*) FROM {t}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

#[tokio::test]
async fn without_the_backstop_the_same_mistake_deletes() {
    // The control experiment: it is the backstop that stopped the write.
    let t = unique("bs_control");
    victim(&t);
    let mut config = airlock::Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone());
    config.read_only_backstop = false;
    let proxy = TestProxy::with_policy(config, Some(trusting(&t)));
    let c = proxy.connect("postgres", "airlock_test").await;
    c.simple_query(&format!("SELECT {t}_evil()")).await.unwrap();
    assert_eq!(rows(&t), 0);
}

#[tokio::test]
async fn clients_cannot_switch_the_backstop_off() {
    let t = unique("bs_switch");
    victim(&t);
    let proxy = TestProxy::with_policy(
        airlock::Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone()),
        Some(trusting(&t)),
    );
    let c = proxy.connect("postgres", "airlock_test").await;
    for attempt in [
        "SET default_transaction_read_only = off",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "BEGIN READ WRITE",
        "START TRANSACTION READ WRITE",
    ] {
        let err = c.simple_query(attempt).await.unwrap_err();
        assert_eq!(code(&err), "42501", "{attempt}: {err:?}");
    }
    // RESET ALL and DISCARD ALL (connection pools' reset) are allowed:
    // they return default_transaction_read_only to its session default,
    // which the backstop made `on`.
    for reset in ["RESET ALL", "DISCARD ALL"] {
        c.simple_query(reset).await.unwrap();
        let err = c
            .simple_query(&format!("SELECT {t}_evil()"))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "25006", "after {reset}: {err:?}");
    }
    let err = c
        .simple_query(&format!("SELECT {t}_evil()"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "25006", "{err:?}");
    assert_eq!(rows(&t), 3);
}

#[tokio::test]
async fn allowed_writes_still_run_between_and_inside_transactions() {
    let t = unique("bs_writes");
    victim(&t);
    // Everything allowed: writes switch the upstream to read-write, reads
    // switch it back.
    let proxy = TestProxy::start();
    let c = proxy.connect("postgres", "airlock_test").await;
    c.simple_query(&format!("INSERT INTO {t} VALUES (4)"))
        .await
        .unwrap();
    let ro: String = c
        .query_one("SELECT current_setting('transaction_read_only')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ro, "on", "a read runs read-only");
    c.execute(&format!("UPDATE {t} SET id = id + 10 WHERE id = 4"), &[])
        .await
        .unwrap();
    c.batch_execute(&format!(
        "BEGIN; SELECT count(*) FROM {t}; INSERT INTO {t} VALUES (5); COMMIT"
    ))
    .await
    .unwrap();
    let tx = c.simple_query("BEGIN").await;
    assert!(tx.is_ok());
    c.simple_query(&format!("SELECT * FROM {t}")).await.unwrap();
    c.simple_query(&format!("DELETE FROM {t} WHERE id = 1"))
        .await
        .unwrap();
    c.simple_query("COMMIT").await.unwrap();
    assert_eq!(rows(&t), 4);
    // Pipelined: a write queued behind a read waits for the mode switch
    // instead of failing.
    let (read_sql, write_sql) = (
        format!("SELECT count(*) FROM {t}"),
        format!("INSERT INTO {t} VALUES (6)"),
    );
    let read = c.query_one(&read_sql, &[]);
    let write = c.execute(&write_sql, &[]);
    let (r, w) = futures_util::join!(read, write);
    r.unwrap();
    w.unwrap();
    assert_eq!(rows(&t), 5);
    // ParameterStatus never shows the backstop's own switching.
    let shown: String = c
        .query_one("SHOW default_transaction_read_only", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        shown, "on",
        "documented: reads run with the read-only default on"
    );
}

/// A function vouched for as a read that turns the read-only default off
/// (PostgreSQL allows `set_config` in a read-only transaction): the server
/// reports the change, and the session sets the default again before the
/// next read, which PostgreSQL then refuses to let write.
#[tokio::test]
async fn a_read_that_turns_the_default_off_does_not_disarm_the_backstop() {
    let t = unique("bs_flip");
    victim(&t);
    let flip = format!(
        "CREATE FUNCTION {t}_flip() RETURNS text LANGUAGE sql AS
           $$ SELECT set_config('default_transaction_read_only', 'off', false) $$;"
    );
    stdout_ok(&psql(
        pg().port,
        "postgres",
        "airlock_test",
        &["-qc", &flip],
    ));
    let trust = format!("[functions]\nread = [\"{t}_evil\", \"{t}_flip\"]\n");
    let policy =
        Policy::from_sources(&[("default.toml", SHIPPED), ("trust.toml", &trust)]).unwrap();
    let proxy = TestProxy::with_policy(
        airlock::Config::new("127.0.0.1:0".parse().unwrap(), pg().addr.clone()),
        Some(policy),
    );
    let c = proxy.connect("postgres", "airlock_test").await;
    for round in 0..2 {
        c.simple_query(&format!("SELECT {t}_flip()")).await.unwrap();
        let err = c
            .simple_query(&format!("SELECT {t}_evil()"))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "25006", "round {round}: {err:?}");
        // The extended protocol, too.
        c.query(&format!("SELECT {t}_flip()"), &[]).await.unwrap();
        let err = c
            .query(&format!("SELECT {t}_evil()"), &[])
            .await
            .unwrap_err();
        assert_eq!(code(&err), "25006", "round {round}: {err:?}");
    }
    assert_eq!(rows(&t), 3);
}
