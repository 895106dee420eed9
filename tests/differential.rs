//! Differential test: the corpus in `tests/corpus/differential.txt` runs as
//! raw frontend messages once straight against PostgreSQL and once through
//! airlock, and every server message must come back identical, byte for
//! byte.
//!
//! Only what must differ between two connections is normalized, each
//! checked on its own before it is blanked:
//! - BackendKeyData's secret key (the proxy issues its own); its process id
//!   must be the upstream's real one, which `pg_backend_pid()` confirms;
//! - the process id in NotificationResponse, which must be the connection's
//!   own backend;
//! - `pg_backend_pid()` values in items marked `> pid`;
//! - OIDs of the temporary tables and their types each run creates, which
//!   appear in RowDescription (mapped to placeholders by name).

mod common;
mod proxy_panics;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::rawpg::*;
use common::*;

const CORPUS: &str = include_str!("corpus/differential.txt");

/// One message sequence of the corpus and how its answer ends.
#[derive(Debug, Default)]
struct Item {
    name: String,
    chunks: Vec<Chunk>,
    end: End,
    pid: bool,
    has: Vec<u8>,
}

/// Bytes written together, then optionally a wait for one message tag.
#[derive(Debug, Default)]
struct Chunk {
    bytes: Vec<u8>,
    await_tag: Option<u8>,
}

#[derive(Debug, Clone, Copy)]
enum End {
    /// This many ReadyForQuery (`None`: one per Query and Sync).
    Ready(Option<usize>),
    /// This many messages with a tag.
    Until(u8, usize),
}

impl Default for End {
    fn default() -> Self {
        End::Ready(None)
    }
}

/// Decodes the corpus escapes `\n \t \\ \xNN`.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 4 <= b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).expect("hex escape");
                    out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                    i += 4;
                    continue;
                }
                // `\N` (NULL in COPY text) and the like stay as written.
                other => out.extend_from_slice(&[b'\\', other]),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// A statement or portal name; "-" is the unnamed one.
fn name(token: &str) -> Vec<u8> {
    if token == "-" {
        Vec::new()
    } else {
        unescape(token)
    }
}

fn one_byte(s: &str) -> u8 {
    assert_eq!(s.len(), 1, "expected one tag character, got {s:?}");
    s.as_bytes()[0]
}

/// The items of session `wanted`, with `${u}` replaced by `u`.
fn session(wanted: &str, u: &str) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    let mut in_session = false;
    let mut syncs = 0;
    let finish = |items: &mut Vec<Item>, syncs: &mut usize| {
        if let Some(item) = items.last_mut() {
            if let End::Ready(None) = item.end {
                item.end = End::Ready(Some(*syncs));
            }
            item.chunks
                .retain(|c| !c.bytes.is_empty() || c.await_tag.is_some());
        }
        *syncs = 0;
    };
    for raw in CORPUS.lines() {
        let line = raw.replace("${u}", u);
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix("=== ") {
            finish(&mut items, &mut syncs);
            if in_session {
                break;
            }
            in_session = s.trim() == wanted;
            continue;
        }
        if !in_session {
            continue;
        }
        if let Some(n) = line.strip_prefix("--- ") {
            finish(&mut items, &mut syncs);
            items.push(Item {
                name: n.trim().to_string(),
                chunks: vec![Chunk::default()],
                ..Default::default()
            });
            continue;
        }
        let item = items.last_mut().expect("a message before the first item");
        let (cmd, rest) = line.split_once(' ').unwrap_or((&line, ""));
        let words: Vec<&str> = rest.split_whitespace().collect();
        let mut msg = Vec::new();
        match cmd {
            "Q" => {
                msg = query(&unescape(rest));
                syncs += 1;
            }
            "P" => {
                let (stmt, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                let (types, sql) = match rest.strip_prefix(':') {
                    Some(r) => {
                        let (t, sql) = r.split_once(' ').unwrap_or((r, ""));
                        let t = t.split(',').map(|o| o.parse().expect("type oid"));
                        (t.collect(), sql)
                    }
                    None => (Vec::new(), rest),
                };
                msg = parse(&name(stmt), &unescape(sql), &types);
            }
            "B" => {
                let binary = words.get(2) == Some(&":b");
                let params = words[2 + usize::from(binary)..]
                    .iter()
                    .map(|p| (*p != "\\N").then(|| unescape(p)))
                    .collect::<Vec<_>>();
                msg = bind(&name(words[0]), &name(words[1]), &params, i16::from(binary));
            }
            "D" => msg = describe(one_byte(words[0]), &name(words[1])),
            "C" => msg = close(one_byte(words[0]), &name(words[1])),
            "E" => msg = execute(&name(words[0]), words[1].parse().expect("row limit")),
            "F" => {
                let oid: u32 = words[0].parse().expect("function oid");
                let args = words[1..]
                    .iter()
                    .map(|a| (*a != "\\N").then(|| unescape(a)));
                msg = function_call(oid, &args.collect::<Vec<_>>());
                syncs += 1;
            }
            "S" => {
                msg = sync();
                syncs += 1;
            }
            "H" => msg = flush(),
            "d" => msg = copy_data(&unescape(rest)),
            "c" => msg = copy_done(),
            "f" => msg = copy_fail(&unescape(rest)),
            ">" => match words[0] {
                "write" => item.chunks.push(Chunk::default()),
                "await" => {
                    item.chunks.last_mut().unwrap().await_tag = Some(one_byte(words[1]));
                    item.chunks.push(Chunk::default());
                }
                "rfq" => item.end = End::Ready(Some(words[1].parse().unwrap())),
                "until" => item.end = End::Until(one_byte(words[1]), words[2].parse().unwrap()),
                "pid" => item.pid = true,
                "has" => item.has = words[1].bytes().collect(),
                other => panic!("unknown directive {other:?}"),
            },
            other => panic!("unknown corpus line {other:?}: {line:?}"),
        }
        item.chunks
            .last_mut()
            .unwrap()
            .bytes
            .extend_from_slice(&msg);
    }
    finish(&mut items, &mut syncs);
    assert!(!items.is_empty(), "no session {wanted:?} in the corpus");
    items
}

/// What one run of a session received.
struct Run {
    via: &'static str,
    startup: Vec<Msg>,
    items: Vec<Vec<Msg>>,
    /// What came after Terminate, before the close.
    tail: Vec<Msg>,
    pid: u32,
    /// OIDs of this connection's temporary relations and types, by name.
    temp_oids: HashMap<u32, String>,
    /// The name of this connection's temporary schema, if it made one.
    temp_schema: String,
}

/// Runs `items` on a new connection to `addr`; with `piece`, every write is
/// cut into segments of that many bytes.
fn run(via: &'static str, addr: SocketAddr, items: &[Item], piece: Option<usize>) -> Run {
    let mut w = Wire::connect(addr);
    let startup = w.startup(&[
        ("user", "postgres"),
        ("database", "airlock_test"),
        ("application_name", "differential"),
        ("client_encoding", "UTF8"),
        ("extra_float_digits", "3"),
        ("DateStyle", "ISO, MDY"),
    ]);
    assert_eq!(
        startup.last().map(|m| m.tag),
        Some(b'Z'),
        "{via}: {startup:?}"
    );
    assert!(w.pid != 0, "{via}: no BackendKeyData in {startup:?}");
    let backend_pid = w.values("select pg_backend_pid()");
    assert_eq!(
        backend_pid,
        [w.pid.to_string()],
        "{via}: BackendKeyData must carry the real backend pid"
    );

    let mut answers = Vec::new();
    for item in items {
        let deadline = Instant::now() + TIMEOUT;
        let mut got: Vec<Msg> = Vec::new();
        let read_one = |w: &mut Wire, got: &mut Vec<Msg>, waiting: &str| match w.read(deadline) {
            Read1::Msg(m) => got.push(m),
            other => panic!(
                "{via}: item {:?}: {other:?} while waiting for {waiting}; got {}",
                item.name,
                abbreviate(&tags(got))
            ),
        };
        for chunk in &item.chunks {
            match piece {
                Some(p) => w.send_split(&chunk.bytes, p),
                None => w.send(&chunk.bytes),
            }
            if let Some(tag) = chunk.await_tag {
                let want = format!("'{}'", tag as char);
                while got.last().map(|m| m.tag) != Some(tag) {
                    read_one(&mut w, &mut got, &want);
                }
            }
        }
        let (tag, n) = match item.end {
            End::Ready(n) => (b'Z', n.unwrap()),
            End::Until(tag, n) => (tag, n),
        };
        let want = format!("{n} '{}'", tag as char);
        let mut seen = got.iter().filter(|m| m.tag == tag).count();
        while seen < n {
            read_one(&mut w, &mut got, &want);
            seen += usize::from(got.last().map(|m| m.tag) == Some(tag));
        }
        answers.push(got);
    }

    let mut temp_oids = HashMap::new();
    let msgs = w.simple(
        "select c.oid, c.relname::text from pg_class c where c.relnamespace = pg_my_temp_schema() \
         union all select t.oid, t.typname::text from pg_type t \
         where t.typnamespace = pg_my_temp_schema()",
    );
    assert!(first_error(&msgs).is_none(), "{via}: {msgs:?}");
    for m in msgs.iter().filter(|m| m.tag == b'D') {
        let cols = m.columns();
        let oid = String::from_utf8(cols[0].clone().unwrap()).unwrap();
        let name = String::from_utf8(cols[1].clone().unwrap()).unwrap();
        temp_oids.insert(oid.parse().unwrap(), name);
    }
    let temp_schema = w
        .values(
            "select coalesce(nspname::text, '') from pg_namespace where oid = pg_my_temp_schema()",
        )
        .pop()
        .unwrap_or_default();
    w.send(&terminate());
    let tail = w.closed_within(Duration::from_secs(10));
    Run {
        via,
        startup,
        items: answers,
        tail,
        pid: w.pid,
        temp_oids,
        temp_schema,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Blanks what must differ between two connections, after checking it.
/// Returns how many `pg_backend_pid()` values were replaced.
fn normalize(run: &Run, msgs: &mut [Msg], pid_values: bool, context: &str) -> usize {
    const PLACEHOLDER: &[u8] = b"<backend pid>";
    let via = run.via;
    let mut names: Vec<&String> = run.temp_oids.values().collect();
    names.sort();
    let temp = |oid: u32| -> Option<u32> {
        let n = run.temp_oids.get(&oid)?;
        Some(0xFFFF_0000 + names.iter().position(|x| *x == n).unwrap() as u32)
    };
    let mut replaced = 0;
    for m in msgs.iter_mut() {
        match m.tag {
            b'K' => {
                assert_eq!(m.body.len(), 8, "{via}: {context}: {m:?}");
                assert_eq!(
                    u32_at(&m.body, 0),
                    run.pid,
                    "{via}: {context}: BackendKeyData pid"
                );
                m.body.fill(0);
            }
            b'A' => {
                assert_eq!(
                    u32_at(&m.body, 0),
                    run.pid,
                    "{via}: {context}: NotificationResponse must carry the session's own pid"
                );
                m.body[..4].fill(0);
            }
            b'T' => {
                let n = u16::from_be_bytes([m.body[0], m.body[1]]);
                let mut at = 2;
                for _ in 0..n {
                    at += m.body[at..].iter().position(|&b| b == 0).unwrap() + 1;
                    for field in [at, at + 6] {
                        if let Some(p) = temp(u32_at(&m.body, field)) {
                            m.body[field..field + 4].copy_from_slice(&p.to_be_bytes());
                        }
                    }
                    at += 18;
                }
            }
            b'E' | b'N' if !run.temp_schema.is_empty() => {
                // The schema field names the connection's own temp schema.
                let mut out = Vec::with_capacity(m.body.len());
                let mut rest = &m.body[..];
                while let Some((&t, tail)) = rest.split_first() {
                    if t == 0 {
                        break;
                    }
                    let nul = tail.iter().position(|&b| b == 0).unwrap();
                    out.push(t);
                    if t == b's' && &tail[..nul] == run.temp_schema.as_bytes() {
                        out.extend_from_slice(b"<temp schema>");
                    } else {
                        out.extend_from_slice(&tail[..nul]);
                    }
                    out.push(0);
                    rest = &tail[nul + 1..];
                }
                out.push(0);
                m.body = out;
            }
            b'V' if pid_values => {
                let text = run.pid.to_string().into_bytes();
                if m.body.get(4..) == Some(&text[..]) {
                    replaced += 1;
                    m.body = (PLACEHOLDER.len() as i32).to_be_bytes().to_vec();
                    m.body.extend_from_slice(PLACEHOLDER);
                }
            }
            b'D' if pid_values => {
                let text = run.pid.to_string().into_bytes();
                let binary = run.pid.to_be_bytes().to_vec();
                let mut out = m.body[..2].to_vec();
                for col in m.columns() {
                    match col {
                        Some(v) if v == text || v == binary => {
                            replaced += 1;
                            out.extend_from_slice(&(PLACEHOLDER.len() as i32).to_be_bytes());
                            out.extend_from_slice(PLACEHOLDER);
                        }
                        Some(v) => {
                            out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                            out.extend_from_slice(&v);
                        }
                        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    }
                }
                m.body = out;
            }
            _ => {}
        }
    }
    replaced
}

/// Asserts two normalized answers are identical, showing the first
/// difference readably.
fn assert_same(context: &str, direct: &[Msg], proxied: &[Msg]) {
    if direct == proxied {
        return;
    }
    let at = direct
        .iter()
        .zip(proxied)
        .position(|(a, b)| a != b)
        .unwrap_or(direct.len().min(proxied.len()));
    panic!(
        "{context}: responses differ at message {at}\n  direct:  {} messages, tags {}\n  proxied: \
         {} messages, tags {}\n  direct[{at}]:  {:?}\n  proxied[{at}]: {:?}",
        direct.len(),
        abbreviate(&tags(direct)),
        proxied.len(),
        abbreviate(&tags(proxied)),
        direct.get(at),
        proxied.get(at),
    );
}

fn abbreviate(s: &str) -> String {
    if s.len() <= 120 {
        s.to_string()
    } else {
        format!("{}…{} ({} in all)", &s[..60], &s[s.len() - 40..], s.len())
    }
}

/// Runs session `name` directly and through a fresh proxy, and compares.
fn differential(name: &str, piece: Option<usize>) {
    proxy_panics::watch();
    let u = unique("d");
    let items = session(name, &u);
    let direct_addr: SocketAddr = pg().addr.parse().unwrap();
    let proxy = TestProxy::start();
    let mut direct = run("direct", direct_addr, &items, None);
    let mut proxied = run("proxied", proxy.addr, &items, piece);
    assert_ne!(direct.pid, proxied.pid);

    let mut startup = [direct.startup.clone(), proxied.startup.clone()];
    normalize(&direct, &mut startup[0], false, "startup");
    normalize(&proxied, &mut startup[1], false, "startup");
    assert_same(&format!("{name}: startup"), &startup[0], &startup[1]);
    let (mut d_items, mut p_items) = (
        std::mem::take(&mut direct.items),
        std::mem::take(&mut proxied.items),
    );
    for (i, item) in items.iter().enumerate() {
        let context = format!("{name}: item {i} {:?}", item.name);
        for tag in &item.has {
            assert!(
                d_items[i].iter().any(|m| m.tag == *tag),
                "{context}: the corpus expects a '{}' in the direct answer: {}",
                *tag as char,
                tags(&d_items[i])
            );
        }
        let rd = normalize(&direct, &mut d_items[i], item.pid, &context);
        let rp = normalize(&proxied, &mut p_items[i], item.pid, &context);
        if item.pid {
            assert!(
                rd > 0 && rp > 0,
                "{context}: no pg_backend_pid() value seen"
            );
        }
        assert_same(&context, &d_items[i], &p_items[i]);
    }
    assert_same(
        &format!("{name}: after Terminate"),
        &direct.tail,
        &proxied.tail,
    );
    assert!(proxied.tail.is_empty(), "{:?}", proxied.tail);
    proxy_panics::assert_none();
}

#[test]
fn corpus_is_large_enough() {
    let names = [
        "simple",
        "transactions",
        "extended",
        "copy",
        "notify",
        "encoding",
    ];
    let total: usize = names.iter().map(|n| session(n, "x").len()).sum();
    assert!(total >= 60, "only {total} corpus items");
    let sessions = CORPUS.lines().filter(|l| l.starts_with("=== ")).count();
    assert_eq!(sessions, names.len(), "every session has a test below");
}

#[test]
fn simple_queries() {
    differential("simple", None);
}

#[test]
fn transaction_blocks() {
    differential("transactions", None);
}

#[test]
fn extended_protocol() {
    differential("extended", None);
}

#[test]
fn copy_both_ways() {
    differential("copy", None);
}

#[test]
fn listen_notify_and_backend_pid() {
    differential("notify", None);
}

#[test]
fn client_encodings() {
    differential("encoding", None);
}

/// The proxy frames messages however the client's bytes are cut.
#[test]
fn extended_protocol_in_tiny_writes() {
    differential("extended", Some(7));
}

#[test]
fn copy_in_tiny_writes() {
    differential("copy", Some(5));
}
