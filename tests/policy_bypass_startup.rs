//! Issue 10, class 11: startup packets that PostgreSQL reads differently
//! from the proxy. The server takes the last of a parameter given twice
//! (and the last `-c` of an `options` string); a proxy that takes the first
//! judges the statement against another database's catalog or another
//! search path. Each packet is built byte for byte (`rawpg`), sent straight
//! to PostgreSQL first (the planted view must write there), then through
//! the proxy, where the session must be refused at startup (FATAL) or the
//! read refused (42501), and nothing may change.

mod common;
mod planted;

use common::rawpg::*;
use planted::{encode, Arena, RawAttack, ATTACKER_APP};

/// In the real database: `report` is a view over code that writes.
const REAL: &str = "
    CREATE VIEW public.report AS SELECT public.hit('startup') AS ok;
    CREATE VIEW public.report_local AS SELECT public.local_hit('startup') AS ok;";

/// In the decoy database: plain tables of the same names.
const DECOY: &str = "
    CREATE TABLE public.report (ok boolean);
    INSERT INTO public.report VALUES (true);
    CREATE TABLE public.report_local (ok boolean);
    INSERT INTO public.report_local VALUES (true);";

/// In one database: `decoy_s.report` a table, `evil_s.report` a view over
/// code that writes.
const TWO_SCHEMAS: &str = "
    CREATE SCHEMA decoy_s;
    CREATE TABLE decoy_s.report (ok boolean);
    INSERT INTO decoy_s.report VALUES (true);
    CREATE SCHEMA evil_s;
    CREATE VIEW evil_s.report AS SELECT public.hit('startup path') AS ok;
    CREATE VIEW evil_s.report_local AS SELECT public.local_hit('startup path') AS ok;
    CREATE TABLE decoy_s.report_local (ok boolean);
    INSERT INTO decoy_s.report_local VALUES (true);";

/// Parse/Bind/Execute/Sync of `sql`, unnamed.
fn extended(sql: &[u8]) -> Vec<u8> {
    [
        parse(b"", sql, &[]),
        bind(b"", b"", &[], 0),
        execute(b"", 0),
        sync(),
    ]
    .concat()
}

/// A read of `table` in the simple protocol.
fn simple_read(a: RawAttack, table: &str) -> RawAttack {
    a.attack(query(format!("SELECT * FROM {table}").as_bytes()), 1)
}

/// A read of `table` in the extended protocol inside BEGIN ... COMMIT.
fn extended_read_in_block(a: RawAttack, table: &str) -> RawAttack {
    a.then(query(b"BEGIN"), 1)
        .attack(extended(format!("SELECT * FROM {table}").as_bytes()), 1)
        .then(query(b"COMMIT"), 1)
}

#[tokio::test]
async fn a_database_named_twice_is_the_last_one() {
    let mut arena = Arena::new();
    let app = ATTACKER_APP;
    let a = RawAttack::new("database twice (decoy, then real)", REAL)
        .decoy(DECOY)
        .startup(&[
            ("user", "postgres"),
            ("database", "{decoy}"),
            ("application_name", app),
            ("database", "{db}"),
        ]);
    arena.run_raw(simple_read(a, "report")).await;

    let a = RawAttack::new(
        "database twice with options and DateStyle in between, extended in BEGIN",
        REAL,
    )
    .decoy(DECOY)
    .startup(&[
        ("database", "{decoy}"),
        ("options", "-c statement_timeout=0"),
        ("user", "postgres"),
        ("DateStyle", "ISO"),
        ("application_name", app),
        ("database", "{db}"),
    ]);
    arena
        .run_raw(extended_read_in_block(a, "report_local"))
        .await;

    let a = RawAttack::new(
        "database three times (decoy, decoy, real), simple in BEGIN",
        REAL,
    )
    .decoy(DECOY)
    .startup(&[
        ("user", "postgres"),
        ("database", "{decoy}"),
        ("database", "{decoy}"),
        ("application_name", app),
        ("database", "{db}"),
    ])
    .then(query(b"BEGIN"), 1)
    .attack(query(b"SELECT * FROM report_local"), 1)
    .then(query(b"COMMIT"), 1);
    arena.run_raw(a).await;
    arena.finish();
}

#[tokio::test]
async fn options_and_settings_given_twice_are_the_last_ones() {
    let mut arena = Arena::new();
    let app = ATTACKER_APP;
    let a = RawAttack::new(
        "options twice (search_path decoy_s, then evil_s)",
        TWO_SCHEMAS,
    )
    .startup(&[
        ("user", "postgres"),
        ("database", "{db}"),
        ("options", "-c search_path=decoy_s"),
        ("application_name", app),
        ("options", "-c search_path=evil_s"),
    ]);
    arena.run_raw(simple_read(a, "report")).await;

    let a = RawAttack::new(
        "one options string with two -c search_path (the last wins), extended in BEGIN",
        TWO_SCHEMAS,
    )
    .startup(&[
        ("user", "postgres"),
        ("database", "{db}"),
        ("application_name", app),
        ("options", "-c search_path=decoy_s -c search_path=evil_s"),
    ]);
    arena
        .run_raw(extended_read_in_block(a, "report_local"))
        .await;

    let a = RawAttack::new(
        "search_path as a startup parameter twice, another in between",
        TWO_SCHEMAS,
    )
    .startup(&[
        ("user", "postgres"),
        ("search_path", "decoy_s"),
        ("database", "{db}"),
        ("application_name", app),
        ("search_path", "evil_s"),
    ]);
    arena.run_raw(simple_read(a, "report")).await;

    let a = RawAttack::new(
        "options -c search_path, then a search_path startup parameter",
        TWO_SCHEMAS,
    )
    .startup(&[
        ("user", "postgres"),
        ("database", "{db}"),
        ("options", "-c search_path=decoy_s"),
        ("search_path", "evil_s"),
        ("application_name", app),
    ]);
    arena
        .run_raw(extended_read_in_block(a, "report_local"))
        .await;
    arena.finish();
}

#[tokio::test]
async fn client_encoding_given_twice_is_the_last_one() {
    let mut arena = Arena::new();
    let app = ATTACKER_APP;
    let admin = common::connect(&common::direct_conninfo("postgres", "postgres")).await;
    for (enc, name, simple) in [("WIN1251", "отчёт", true), ("KOI8R", "сводка", false)] {
        let (bytes, latin1) = encode(&admin, name, enc).await;
        let plant = format!(
            "CREATE VIEW public.\"{name}\" AS SELECT public.hit('{enc}') AS ok,
                 public.local_hit('{enc}') AS ok2;
             CREATE TABLE public.\"{latin1}\" (ok boolean, ok2 boolean);
             INSERT INTO public.\"{latin1}\" VALUES (true, true);"
        );
        let a = RawAttack::new(
            &format!("client_encoding twice (UTF8, then {enc}), a view named {name} in {enc}"),
            &plant,
        )
        .startup(&[
            ("user", "postgres"),
            ("client_encoding", "UTF8"),
            ("database", "{db}"),
            ("application_name", app),
            ("client_encoding", enc),
        ]);
        let sql = [b"SELECT * FROM \"".as_slice(), &bytes, b"\""].concat();
        let a = if simple {
            a.attack(query(&sql), 1)
        } else {
            a.then(query(b"BEGIN"), 1)
                .attack(extended(&sql), 1)
                .then(query(b"COMMIT"), 1)
        };
        arena.run_raw(a).await;
    }
    arena.finish();
}
