//! Issue 10, class 10: the proxy's model of named statements drifting from
//! the server's, with no planted objects. Each attack leaves the server
//! holding `DELETE FROM victim` under a name the proxy believes is a read,
//! then binds and executes that name inside BEGIN ... COMMIT (where the
//! read-only backstop is off). Every byte is the test's (`rawpg`); each
//! sequence is first sent straight to PostgreSQL (the victim must lose its
//! rows there), then through the proxy, where the victim must keep them
//! and the Bind/Execute must get 42501 (or 08P01).

mod common;
mod planted;

use common::rawpg::*;
use planted::{Arena, RawAttack};

const DELETE: &[u8] = b"DELETE FROM public.victim WHERE true";

/// `msg` (a whole frontend message) with `junk` after its body, its length
/// counting the junk: PostgreSQL rejects such a message with 08P01.
fn with_trailing(msg: Vec<u8>, junk: &[u8]) -> Vec<u8> {
    let mut m = msg;
    m.extend_from_slice(junk);
    let len = (m.len() - 1) as u32;
    m[1..5].copy_from_slice(&len.to_be_bytes());
    m
}

/// Messages back to back.
fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Parse of `sql` as `name`, then Sync.
fn parse_sync(name: &[u8], sql: &[u8]) -> Vec<u8> {
    cat(&[parse(name, sql, &[]), sync()])
}

/// BEGIN, the Bind/Execute of `name` that must be refused, COMMIT.
fn run_in_block(a: RawAttack, name: &[u8]) -> RawAttack {
    a.then(query(b"BEGIN"), 1)
        .attack(cat(&[bind(b"", name, &[], 0), execute(b"", 0), sync()]), 1)
        .then(query(b"COMMIT"), 1)
}

/// A name of `n` bytes: 63 `q`s and then `tail`.
fn long(tail: &str) -> Vec<u8> {
    let mut n = vec![b'q'; 63];
    n.extend_from_slice(tail.as_bytes());
    n
}

#[tokio::test]
async fn names_truncated_to_namedatalen_are_the_servers_names() {
    let mut arena = Arena::new();
    // The DELETE under exactly 63 bytes; a read under a 90-byte name with
    // the same first 63 bytes, which the server refuses (42P05): it is the
    // same statement to the server.
    let short = vec![b'q'; 63];
    let longer = long(&"r".repeat(27));
    let a = RawAttack::new(
        "NAMEDATALEN: 63-byte DELETE, 90-byte SELECT of the same prefix",
        "",
    )
    .then(parse_sync(&short, DELETE), 1)
    .then(parse_sync(&longer, b"SELECT 1"), 1);
    arena.run_raw(run_in_block(a, &longer)).await;

    // A read under one long name, DEALLOCATE (simple protocol) of another
    // long name with the same prefix (the server truncates the identifier
    // and drops the read), then the DELETE under a third such name: the
    // server now has the DELETE where the proxy still has the read.
    let read = long("R");
    let a = RawAttack::new(
        "NAMEDATALEN: DEALLOCATE of a colliding name, then a DELETE parsed under a third",
        "",
    )
    .then(parse_sync(&read, b"SELECT 1"), 1)
    .then(
        query(format!("DEALLOCATE \"{}\"", String::from_utf8(long("X")).unwrap()).as_bytes()),
        1,
    )
    .then(parse_sync(&long("W"), DELETE), 1);
    arena.run_raw(run_in_block(a, &read)).await;

    // The same with Close of the colliding name, all in one pipeline
    // inside the block.
    let a = RawAttack::new(
        "NAMEDATALEN: Close of a colliding name and re-Parse in one pipeline inside BEGIN",
        "",
    )
    .then(query(b"BEGIN"), 1)
    .attack(
        cat(&[
            parse(&long("read"), b"SELECT 1", &[]),
            flush(),
            close(b'S', &long("other")),
            parse(&long("write"), DELETE, &[]),
            bind(b"", &long("read"), &[], 0),
            execute(b"", 0),
            sync(),
        ]),
        1,
    )
    .then(query(b"COMMIT"), 1);
    arena.run_raw(a).await;
    arena.finish();
}

#[tokio::test]
async fn messages_the_server_rejects_change_nothing_in_the_model() {
    let mut arena = Arena::new();
    // Close with trailing bytes (08P01) and a re-Parse in the same
    // pipeline, which the server discards after the error.
    let a = RawAttack::new(
        "Close with trailing bytes, re-Parse in the same pipeline",
        "",
    )
    .then(parse_sync(b"s1", DELETE), 1)
    .then(
        cat(&[
            with_trailing(close(b'S', b"s1"), b"\0\0"),
            parse(b"s1", b"SELECT 1", &[]),
            sync(),
        ]),
        1,
    );
    arena.run_raw(run_in_block(a, b"s1")).await;

    // Describe with trailing bytes, then Close and Parse: discarded.
    let a = RawAttack::new(
        "Describe with trailing bytes, then Close+Parse discarded",
        "",
    )
    .then(parse_sync(b"s2", DELETE), 1)
    .then(
        cat(&[
            with_trailing(describe(b'S', b"s2"), b"junk"),
            close(b'S', b"s2"),
            parse(b"s2", b"SELECT 1", &[]),
            sync(),
        ]),
        1,
    );
    arena.run_raw(run_in_block(a, b"s2")).await;

    // A Bind to a statement that does not exist (26000), then Close+Parse:
    // discarded.
    let a = RawAttack::new(
        "Bind to an unknown statement (26000), then Close+Parse discarded",
        "",
    )
    .then(parse_sync(b"s3", DELETE), 1)
    .then(
        cat(&[
            bind(b"", b"no_such_statement", &[], 0),
            execute(b"", 0),
            close(b'S', b"s3"),
            parse(b"s3", b"SELECT 1", &[]),
            sync(),
        ]),
        1,
    );
    arena.run_raw(run_in_block(a, b"s3")).await;

    // A syntax error in an unnamed Parse, then Close+Parse discarded.
    let a = RawAttack::new(
        "syntax error in a Parse (42601), then Close+Parse discarded",
        "",
    )
    .then(parse_sync(b"s4", DELETE), 1)
    .then(
        cat(&[
            parse(b"", b"SELEC 1", &[]),
            close(b'S', b"s4"),
            parse(b"s4", b"SELECT 1", &[]),
            sync(),
        ]),
        1,
    );
    arena.run_raw(run_in_block(a, b"s4")).await;
    arena.finish();
}

#[tokio::test]
async fn deallocate_and_discard_that_did_not_run_forget_nothing() {
    let mut arena = Arena::new();
    // DEALLOCATE over the extended protocol in an aborted block (25P02).
    let a = RawAttack::new("extended-protocol DEALLOCATE in an aborted block", "")
        .then(parse_sync(b"s5", DELETE), 1)
        .then(query(b"BEGIN"), 1)
        .then(query(b"SELECT 1/0"), 1)
        .then(
            cat(&[
                parse(b"", b"DEALLOCATE s5", &[]),
                bind(b"", b"", &[], 0),
                execute(b"", 0),
                sync(),
            ]),
            1,
        )
        .then(query(b"ROLLBACK"), 1)
        .then(parse_sync(b"s5", b"SELECT 1"), 1);
    arena.run_raw(run_in_block(a, b"s5")).await;

    // DISCARD ALL in a multi-statement Query fails by itself (25001: it
    // cannot run in the implicit block).
    let a = RawAttack::new(
        "DISCARD ALL that fails in a multi-statement Query (25001)",
        "",
    )
    .then(parse_sync(b"s6", DELETE), 1)
    .then(query(b"SELECT 1; DISCARD ALL"), 1)
    .then(parse_sync(b"s6", b"SELECT 1"), 1);
    arena.run_raw(run_in_block(a, b"s6")).await;

    // DEALLOCATE ALL after an error earlier in the same Query.
    let a = RawAttack::new(
        "DEALLOCATE ALL after an error (42P01) in the same Query",
        "",
    )
    .then(parse_sync(b"s7", DELETE), 1)
    .then(query(b"SELECT * FROM no_such_table; DEALLOCATE ALL"), 1)
    .then(parse_sync(b"s7", b"SELECT 1"), 1);
    arena.run_raw(run_in_block(a, b"s7")).await;

    // DEALLOCATE in a Query that the proxy holds and the reviewer rejects:
    // the server never sees it (the control leaves it out).
    let a = RawAttack::new(
        "DEALLOCATE in a Query held and rejected (with a DELETE)",
        "",
    )
    .then(parse_sync(b"s8", DELETE), 1)
    .proxy_only(
        query(b"DEALLOCATE s8; DELETE FROM public.victim WHERE id = 1"),
        1,
    )
    .then(parse_sync(b"s8", b"SELECT 1"), 1);
    arena.run_raw(run_in_block(a, b"s8")).await;

    // DEALLOCATE ALL in a Query the proxy refuses outright.
    let a = RawAttack::new(
        "DEALLOCATE ALL in a Query refused (SET SESSION AUTHORIZATION)",
        "",
    )
    .then(parse_sync(b"s9", DELETE), 1)
    .proxy_only(
        query(b"DEALLOCATE ALL; SET SESSION AUTHORIZATION postgres"),
        1,
    )
    .then(parse_sync(b"s9", b"SELECT 1"), 1);
    arena.run_raw(run_in_block(a, b"s9")).await;
    arena.finish();
}
