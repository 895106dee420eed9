//! Named statements after user code ran (issue 9; issue 10, class 10).
//!
//! User code can replace a client's named statement (DEALLOCATE it and
//! PREPARE another under its name), so after anything that may run user
//! code the proxy no longer trusts what it tracked: it makes each such
//! statement again from its text just before the client's next Bind of it
//! (`src/frontend/gate/reparse.rs`). Drivers keep named statements for
//! the whole connection (asyncpg, pgjdbc, psycopg), and an audit trigger
//! is enough to run user code, so this must be invisible to the client:
//! every byte here is the test's (`rawpg`), each sequence goes straight to
//! PostgreSQL and through the proxy, and the answers must be the same,
//! message for message, with nothing held. And what user code put under a
//! client's name must never run.

mod common;

use std::net::SocketAddr;

use common::approval::{direct, proxy_with_rules, quick_rules};
use common::rawpg::*;

/// The answers to each step of `steps` (see `rawpg::answers`).
fn run(addr: SocketAddr, steps: &[Vec<u8>]) -> Vec<Vec<(char, Vec<u8>)>> {
    answers(addr, "postgres", "airlock_test", steps)
}

fn tags(answers: &[(char, Vec<u8>)]) -> String {
    answers.iter().map(|(t, _)| *t).collect()
}

/// Writes to the tables named are allowed (they run triggers: user code);
/// everything else but reads and session statements needs approval.
fn rules(tables: &[&str]) -> String {
    let names: Vec<String> = tables.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        r#"
[[rule]]
name = "audited-writes"
kind = ["write"]
tables = [{}]
action = "allow"
{}"#,
        names.join(", "),
        quick_rules("1m")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_statements_run_as_before_after_a_trigger_ran() {
    direct(
        "DROP TABLE IF EXISTS rp_r, rp_log, rp_t CASCADE; \
         CREATE TABLE rp_r (id int, v text); \
         INSERT INTO rp_r VALUES (1, 'a'), (2, 'b'); \
         CREATE TABLE rp_log (n int); CREATE TABLE rp_t (id int); \
         CREATE OR REPLACE FUNCTION rp_audit() RETURNS trigger LANGUAGE plpgsql AS \
           $$BEGIN INSERT INTO rp_log VALUES (NEW.id); RETURN NEW; END$$; \
         CREATE TRIGGER rp_audit AFTER INSERT ON rp_t FOR EACH ROW EXECUTE FUNCTION rp_audit()",
    );
    let proxy = proxy_with_rules(&rules(&["rp_t"]));
    let read = b"SELECT v FROM rp_r WHERE id >= $1 ORDER BY id".to_vec();
    let run_read = |name: &[u8]| {
        [
            bind(b"", name, &[Some(b"1".to_vec())], 0),
            execute(b"", 0),
            sync(),
        ]
        .concat()
    };
    let steps = vec![
        [parse(b"s_read", &read, &[23]), run_read(b"s_read")].concat(),
        [parse(b"s_two", b"SELECT 2", &[]), sync()].concat(),
        query(b"INSERT INTO rp_t VALUES (1)"),
        // The same statement, bound again as a driver does.
        run_read(b"s_read"),
        run_read(b"s_read"),
        // In one pipeline with messages of the client's own before it
        // (a Parse, a Close, a Describe), whose answers the client must
        // get and no others.
        [
            parse(b"s_new", b"SELECT 3", &[]),
            close(b'S', b"s_nothing"),
            describe(b'S', b"s_read"),
            bind(b"", b"s_read", &[Some(b"2".to_vec())], 0),
            execute(b"", 0),
            bind(b"", b"s_two", &[], 0),
            execute(b"", 0),
            sync(),
        ]
        .concat(),
        // The trigger again, inside a block; then the statements in the
        // next block.
        query(b"BEGIN"),
        query(b"INSERT INTO rp_t VALUES (2)"),
        query(b"COMMIT"),
        query(b"BEGIN"),
        run_read(b"s_read"),
        query(b"COMMIT"),
        [close(b'S', b"s_read"), sync()].concat(),
    ];
    let direct_answers = run(common::pg().addr.parse().expect("cluster address"), &steps);
    let proxied = run(proxy.addr, &steps);
    for (i, (d, p)) in direct_answers.iter().zip(&proxied).enumerate() {
        assert_eq!(d, p, "step {i}: direct {} vs airlock {}", tags(d), tags(p));
    }
    assert_eq!(tags(&proxied[3]), "2DDCZ", "the Bind after the trigger ran");
    assert_eq!(tags(&proxied[5]), "13tT2DC2DCZ");
    assert_eq!(direct("SELECT count(*) FROM rp_log"), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_user_code_put_under_a_clients_name_never_runs() {
    direct(
        "DROP TABLE IF EXISTS rp_pwn, rp_t2 CASCADE; \
         CREATE TABLE rp_pwn (n int); CREATE TABLE rp_t2 (id int); \
         CREATE OR REPLACE FUNCTION rp_swap() RETURNS trigger LANGUAGE plpgsql AS \
           $$BEGIN EXECUTE 'DEALLOCATE s_victim'; \
                   EXECUTE 'PREPARE s_victim AS INSERT INTO rp_pwn VALUES (1) RETURNING 2'; \
                   RETURN NULL; END$$; \
         CREATE TRIGGER rp_swap BEFORE INSERT ON rp_t2 FOR EACH STATEMENT EXECUTE FUNCTION rp_swap()",
    );
    let proxy = proxy_with_rules(&rules(&["rp_t2"]));
    let pwned = || direct("SELECT count(*) FROM rp_pwn");
    let victim = || [bind(b"", b"s_victim", &[], 0), execute(b"", 0), sync()].concat();
    let outside = vec![
        [parse(b"s_victim", b"SELECT 1", &[]), sync()].concat(),
        query(b"INSERT INTO rp_t2 VALUES (1)"),
        victim(),
    ];
    let inside = vec![
        [parse(b"s_victim", b"SELECT 1", &[]), sync()].concat(),
        query(b"BEGIN"),
        query(b"INSERT INTO rp_t2 VALUES (1)"),
        victim(),
        query(b"COMMIT"),
    ];
    let addr: SocketAddr = common::pg().addr.parse().expect("cluster address");
    for (label, steps, at) in [
        ("outside a block", &outside, 2),
        ("inside a block", &inside, 3),
    ] {
        // Positive control: straight to PostgreSQL the Bind runs the
        // trigger's INSERT.
        let before = pwned();
        let d = run(addr, steps);
        assert_ne!(
            pwned(),
            before,
            "{label}: the attack does nothing direct: {d:?}"
        );
        let before = pwned();
        let p = run(proxy.addr, steps);
        assert_eq!(
            pwned(),
            before,
            "{label}: the replaced statement ran through airlock"
        );
        // What ran is the client's own statement.
        assert_eq!(tags(&p[at]), "2DCZ", "{label}: {:?}", p[at]);
        assert_eq!(
            p[at][1].1,
            [0, 1, 0, 0, 0, 1, b'1'],
            "{label}: SELECT 1's row"
        );
    }
    // Described before it is bound: the client is told of its own
    // statement's columns, not the trigger's.
    let described = vec![
        [parse(b"s_victim", b"SELECT 1 AS mine", &[]), sync()].concat(),
        query(b"INSERT INTO rp_t2 VALUES (1)"),
        [describe(b'S', b"s_victim"), sync()].concat(),
        victim(),
    ];
    let d = run(addr, &described);
    let columns = |answers: &[(char, Vec<u8>)]| {
        answers
            .iter()
            .find(|(t, _)| *t == 'T')
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    assert!(
        !columns(&d[2]).contains("mine"),
        "direct, the Describe shows the trigger's statement: {:?}",
        d[2]
    );
    let before = pwned();
    let p = run(proxy.addr, &described);
    assert_eq!(pwned(), before, "described: the replaced statement ran");
    assert_eq!(tags(&p[2]), "tTZ", "{:?}", p[2]);
    assert!(columns(&p[2]).contains("mine"), "{:?}", p[2]);
    assert_eq!(tags(&p[3]), "2DCZ", "{:?}", p[3]);
}
