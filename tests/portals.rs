//! Portals through airlock behave as against PostgreSQL (issue 9, item 3):
//! Execute with a row limit and PortalSuspended, repeated Execute of the
//! same portal, named portals kept across Syncs inside a transaction,
//! Describe of a portal, Close, SQL cursors. Each
//! sequence is sent byte for byte to PostgreSQL and through airlock under
//! the shipped policy, and the answers are compared message for message;
//! nothing may be held.

mod common;

use std::net::SocketAddr;

use common::lab::{shipped_proxy, Rejecter, DB};
use common::rawpg::*;

/// The answers to each step of `steps` (see `rawpg::answers`).
fn run(addr: SocketAddr, steps: &[Vec<u8>]) -> Vec<Vec<(char, Vec<u8>)>> {
    answers(addr, "postgres", DB, steps)
}

fn batch(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portals_behave_as_against_postgresql() {
    let proxy = shipped_proxy();
    let reviewer = Rejecter::start(proxy.admin);
    let direct: SocketAddr = common::pg().addr.parse().expect("cluster address");
    let rows = b"SELECT g, repeat('r', g) FROM generate_series(1, 7) g".to_vec();
    let steps = vec![
        batch(&[query(b"BEGIN")]),
        // Row limits: 3, 3, then the rest, on one named portal.
        batch(&[
            parse(b"s_rows", &rows, &[]),
            bind(b"p_rows", b"s_rows", &[], 0),
            describe(b'P', b"p_rows"),
            execute(b"p_rows", 3),
            execute(b"p_rows", 3),
            sync(),
        ]),
        // The portal lives on across the Sync, inside the block.
        batch(&[execute(b"p_rows", 3), sync()]),
        // Run to its end: Execute again returns nothing more.
        batch(&[execute(b"p_rows", 0), sync()]),
        // Two portals of one statement, interleaved, with Flush.
        batch(&[
            bind(b"a", b"s_rows", &[], 1),
            bind(b"b", b"s_rows", &[], 0),
            execute(b"a", 2),
            flush(),
            execute(b"b", 5),
            execute(b"a", 0),
            sync(),
        ]),
        // Close. (An Execute of the closed portal is not compared: airlock
        // does not forward an Execute of a portal it does not know, it
        // holds it, fail closed; the server would answer 34000.)
        batch(&[close(b'P', b"b"), sync()]),
        batch(&[query(b"ROLLBACK")]),
        // Outside a block, a suspended unnamed portal ends at Sync. (An
        // Execute of it after the Sync is held, like any portal airlock
        // does not know; the server would answer 34000.)
        batch(&[bind(b"", b"s_rows", &[], 0), execute(b"", 2), sync()]),
        // A parameterised statement, bound twice with different values.
        batch(&[
            parse(
                b"s_param",
                b"SELECT $1::int + g FROM generate_series(1, 4) g",
                &[23],
            ),
            bind(b"", b"s_param", &[Some(b"10".to_vec())], 0),
            execute(b"", 1),
            execute(b"", 0),
            bind(b"", b"s_param", &[Some(b"20".to_vec())], 0),
            execute(b"", 0),
            sync(),
        ]),
        // SQL cursors in a block, over the same rows.
        batch(&[query(
            b"BEGIN; DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 5) g; \
              FETCH 2 FROM c; FETCH NEXT FROM c; MOVE 1 IN c; FETCH ALL FROM c; CLOSE c; COMMIT",
        )]),
    ];
    let want = tokio::task::spawn_blocking({
        let steps = steps.clone();
        move || run(direct, &steps)
    })
    .await
    .unwrap();
    let got = tokio::task::spawn_blocking({
        let addr = proxy.addr;
        move || run(addr, &steps)
    })
    .await
    .unwrap();
    // The sequences say what they should: the limits suspend the portal.
    let tags = |s: &[(char, Vec<u8>)]| s.iter().map(|(t, _)| *t).collect::<String>();
    assert_eq!(tags(&want[1]), "12TDDDsDDDsZ", "direct, row limits");
    assert_eq!(tags(&want[2]), "DCZ", "direct, the last row after the Sync");
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(
            tags(g),
            tags(w),
            "step {i}: message tags through airlock vs direct"
        );
        assert_eq!(g, w, "step {i}: messages through airlock vs direct");
    }
    assert!(
        reviewer.held.lock().unwrap().is_empty(),
        "nothing is held: {:?}",
        reviewer.held.lock().unwrap()
    );
}
