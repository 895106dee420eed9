//! Large objects through the FunctionCall message: the calls that read
//! (what pg_dump sends) pass, the ones that write do not. A binary of its
//! own: the lab's fingerprint counts every large object in the database,
//! so one created here would look like a change to the labs of other tests
//! running beside it.

mod common;

use common::lab::Lab;
use common::rawpg::*;

/// FunctionCall lets through the large-object calls that read (what
/// pg_dump sends): `lo_open` for reading, `loread`, `lo_close`. Opening
/// for writing, and `lowrite`, are refused, inside a block too (where
/// there is no backstop). The positive control writes the large object
/// with the same messages straight to PostgreSQL.
#[tokio::test]
async fn function_call_reads_large_objects_but_never_writes_them() {
    use std::net::SocketAddr;
    let mut lab = Lab::new().await;
    let lo: u32 = lab
        .admin
        .query_one("SELECT lo_from_bytea(0, 'original')::oid", &[])
        .await
        .unwrap()
        .get(0);
    let content = |w: &mut Wire| w.values(&format!("SELECT convert_from(lo_get({lo}), 'UTF8')"));
    let lo_arg = || Some(lo.to_string().into_bytes());
    let write_mode = Some(b"393216".to_vec()); // INV_READ | INV_WRITE
    let read_mode = Some(b"262144".to_vec()); // INV_READ
                                              // The attack: open for writing, write, commit.
    let attack = |w: &mut Wire| -> Vec<Msg> {
        let mut all = w.simple("BEGIN");
        w.send(&function_call(952, &[lo_arg(), write_mode.clone()]));
        all.extend(w.until(b'Z', 1));
        w.send(&function_call(
            955,
            &[Some(b"0".to_vec()), Some(b"CHANGED!".to_vec())],
        ));
        all.extend(w.until(b'Z', 1));
        all.extend(w.simple("COMMIT"));
        all
    };
    let direct_addr: SocketAddr = format!("127.0.0.1:{}", common::pg().port).parse().unwrap();
    let mut direct = Wire::open(direct_addr, "postgres", common::lab::DB);
    let control = attack(&mut direct);
    assert!(first_error(&control).is_none(), "the control: {control:?}");
    assert_eq!(
        content(&mut direct),
        ["CHANGED!"],
        "the positive control writes"
    );
    lab.admin
        .batch_execute(&format!("SELECT lo_put({lo}, 0, 'original')"))
        .await
        .unwrap();
    // Through the proxy: reading passes, writing does not.
    let mut w = lab.raw_attacker(&[]);
    let before = lab.fingerprint().await;
    let mut msgs = w.simple("BEGIN");
    w.send(&function_call(952, &[lo_arg(), read_mode.clone()]));
    msgs.extend(w.until(b'Z', 1));
    w.send(&function_call(
        954,
        &[Some(b"0".to_vec()), Some(b"100".to_vec())],
    ));
    msgs.extend(w.until(b'Z', 1));
    w.send(&function_call(953, &[Some(b"0".to_vec())]));
    msgs.extend(w.until(b'Z', 1));
    msgs.extend(w.simple("COMMIT"));
    assert!(
        first_error(&msgs).is_none(),
        "reading through the proxy: {msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.tag == b'V' && m.body.ends_with(b"\\x6f726967696e616c")),
        "loread's answer: {msgs:?}"
    );
    let through = attack(&mut w);
    let label = "[FunctionCall] lo_open for writing, lowrite, in a block";
    match first_error(&through).and_then(Msg::code).as_deref() {
        Some("42501") => {}
        other => lab.fail(format!("{label}: {other:?}: {through:?}")),
    }
    w.simple("ROLLBACK");
    lab.check_after(label, &before).await;
    assert_eq!(
        content(&mut direct),
        ["original"],
        "{label}: the object is unchanged"
    );
    lab.finish_raw(w).await;
    lab.attempts += 1;
    lab.finish();
}
