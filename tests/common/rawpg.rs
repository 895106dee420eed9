//! A small raw-protocol PostgreSQL client for the integration tests: it
//! writes exactly the bytes a test builds and reads the server's messages
//! back whole, with a deadline on every read so that a hang fails the test
//! instead of stalling it. Blocking std sockets keep it usable from plain
//! `#[test]`s and from the tests' own threads.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use airlock::protocol::{peek_header, put_cstr, put_message, startup, HEADER_LEN};

/// How long any single expected response may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One backend message: its tag and body (header excluded).
#[derive(Clone, PartialEq, Eq)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// A field of an ErrorResponse or NoticeResponse.
    pub fn field(&self, field: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&t, tail)) = rest.split_first() {
            if t == 0 {
                return None;
            }
            let nul = tail.iter().position(|&b| b == 0)?;
            if t == field {
                return Some(String::from_utf8_lossy(&tail[..nul]).into_owned());
            }
            rest = &tail[nul + 1..];
        }
        None
    }

    /// The SQLSTATE of an ErrorResponse or NoticeResponse.
    pub fn code(&self) -> Option<String> {
        self.field(b'C')
    }

    pub fn is_error(&self) -> bool {
        self.tag == b'E'
    }

    /// An ErrorResponse of severity FATAL (or PANIC).
    pub fn is_fatal(&self) -> bool {
        self.is_error()
            && matches!(
                self.field(b'V').or_else(|| self.field(b'S')).as_deref(),
                Some("FATAL" | "PANIC")
            )
    }

    /// The text columns of a DataRow (`None` is NULL).
    pub fn columns(&self) -> Vec<Option<Vec<u8>>> {
        let b = &self.body;
        let n = i16::from_be_bytes([b[0], b[1]]);
        let mut at = 2;
        let mut out = Vec::new();
        for _ in 0..n {
            let len = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            at += 4;
            if len < 0 {
                out.push(None);
            } else {
                out.push(Some(b[at..at + len as usize].to_vec()));
                at += len as usize;
            }
        }
        out
    }

    /// The whole message as it travelled.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        put_message(&mut out, self.tag, |b| b.extend_from_slice(&self.body));
        out
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOW: usize = 300;
        let shown = &self.body[..self.body.len().min(SHOW)];
        write!(
            f,
            "'{}' len {} {:?}{}",
            self.tag as char,
            self.body.len(),
            String::from_utf8_lossy(shown),
            if self.body.len() > SHOW { "…" } else { "" }
        )
    }
}

/// The answers to each of `steps`, sent one after the other on one
/// connection as `user` to `database`, each read to the ReadyForQuery that
/// ends it, with what varies between servers (ParameterStatus, notices of
/// airlock's own) left out and errors as their SQLSTATE and message: for
/// comparing a sequence sent direct and through airlock message for
/// message.
pub fn answers(
    addr: SocketAddr,
    user: &str,
    database: &str,
    steps: &[Vec<u8>],
) -> Vec<Vec<(char, Vec<u8>)>> {
    let mut wire = Wire::open(addr, user, database);
    steps
        .iter()
        .map(|step| {
            wire.send(step);
            wire.until(b'Z', 1)
                .into_iter()
                .filter(|m| m.tag != b'S' && m.tag != b'N')
                .map(|m| {
                    let body = match m.tag {
                        b'E' => format!("{:?} {:?}", m.code(), m.field(b'M')).into_bytes(),
                        _ => m.body,
                    };
                    (m.tag as char, body)
                })
                .collect()
        })
        .collect()
}

/// The tags of `msgs`, as a string, for assertion messages.
pub fn tags(msgs: &[Msg]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}

/// The first error in `msgs`.
pub fn first_error(msgs: &[Msg]) -> Option<&Msg> {
    msgs.iter().find(|m| m.is_error())
}

/// What a read produced.
#[derive(Debug)]
pub enum Read1 {
    Msg(Msg),
    /// The peer closed the connection (EOF or reset).
    Closed,
    /// Nothing complete arrived before the deadline.
    TimedOut,
}

/// A client connection speaking raw protocol.
pub struct Wire {
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    /// From BackendKeyData, once started.
    pub pid: u32,
    pub secret: u32,
}

impl Wire {
    /// Opens a TCP connection (no startup yet).
    pub fn connect(addr: SocketAddr) -> Wire {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        Wire {
            stream,
            buf: Vec::new(),
            start: 0,
            pid: 0,
            secret: 0,
        }
    }

    /// Connects and completes startup as `user` on `database`.
    pub fn open(addr: SocketAddr, user: &str, database: &str) -> Wire {
        let mut w = Wire::connect(addr);
        let msgs = w.startup(&[("user", user), ("database", database)]);
        assert!(
            first_error(&msgs).is_none(),
            "startup via {addr} failed: {msgs:?}"
        );
        w
    }

    /// Sends a StartupMessage with `params` and reads up to the first
    /// ReadyForQuery (or an error and the close).
    pub fn startup(&mut self, params: &[(&str, &str)]) -> Vec<Msg> {
        self.send(&startup::startup_message(params));
        let mut out = Vec::new();
        loop {
            match self.read(Instant::now() + TIMEOUT) {
                Read1::Msg(m) => {
                    if m.tag == b'K' && m.body.len() == 8 {
                        self.pid = u32::from_be_bytes(m.body[..4].try_into().unwrap());
                        self.secret = u32::from_be_bytes(m.body[4..].try_into().unwrap());
                    }
                    let done = m.tag == b'Z' || m.is_error();
                    out.push(m);
                    if done {
                        return out;
                    }
                }
                Read1::Closed => return out,
                Read1::TimedOut => panic!("startup timed out after {out:?}"),
            }
        }
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write of {} bytes: {e}", bytes.len()));
    }

    /// Writes `bytes` in pieces of `piece` bytes, each its own segment.
    pub fn send_split(&mut self, bytes: &[u8], piece: usize) {
        for p in bytes.chunks(piece) {
            self.send(p);
        }
    }

    /// The next whole message, or the close, or nothing by `deadline`.
    pub fn read(&mut self, deadline: Instant) -> Read1 {
        loop {
            let rest = &self.buf[self.start..];
            match peek_header(rest) {
                Some(Err(len)) => panic!("server sent a message with length {len}"),
                Some(Ok((tag, len))) if rest.len() >= HEADER_LEN + len => {
                    let body = rest[HEADER_LEN..HEADER_LEN + len].to_vec();
                    self.start += HEADER_LEN + len;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    }
                    return Read1::Msg(Msg { tag, body });
                }
                _ => {}
            }
            let now = Instant::now();
            if now >= deadline {
                return Read1::TimedOut;
            }
            if self.start > 0 && self.start * 2 > self.buf.len() {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .expect("set_read_timeout");
            let at = self.buf.len();
            self.buf.resize(at + 64 * 1024, 0);
            let r = self.stream.read(&mut self.buf[at..]);
            match r {
                Ok(n) => {
                    self.buf.truncate(at + n);
                    if n == 0 {
                        return Read1::Closed;
                    }
                }
                Err(e) => {
                    self.buf.truncate(at);
                    match e.kind() {
                        ErrorKind::WouldBlock | ErrorKind::TimedOut => {}
                        ErrorKind::Interrupted => {}
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                            return Read1::Closed
                        }
                        _ => panic!("read: {e}"),
                    }
                }
            }
        }
    }

    /// The next message; panics on close or timeout.
    pub fn next(&mut self) -> Msg {
        match self.read(Instant::now() + TIMEOUT) {
            Read1::Msg(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Bytes received but not yet returned as messages.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Reads until `n` messages with `tag` have arrived; returns everything
    /// read. Panics on close or timeout, showing what did arrive.
    pub fn until(&mut self, tag: u8, n: usize) -> Vec<Msg> {
        let deadline = Instant::now() + TIMEOUT;
        let mut out = Vec::new();
        let mut seen = 0;
        while seen < n {
            match self.read(deadline) {
                Read1::Msg(m) => {
                    seen += usize::from(m.tag == tag);
                    out.push(m);
                }
                other => panic!(
                    "waiting for {n} '{}': {other:?} after {}",
                    tag as char,
                    tags(&out)
                ),
            }
        }
        out
    }

    /// Runs one simple query and reads to its ReadyForQuery.
    pub fn simple(&mut self, sql: &str) -> Vec<Msg> {
        self.send(&query(sql.as_bytes()));
        self.until(b'Z', 1)
    }

    /// Runs a query expected to succeed and returns its first column values.
    pub fn values(&mut self, sql: &str) -> Vec<String> {
        let msgs = self.simple(sql);
        assert!(first_error(&msgs).is_none(), "{sql}: {msgs:?}");
        msgs.iter()
            .filter(|m| m.tag == b'D')
            .map(|m| String::from_utf8_lossy(&m.columns()[0].clone().unwrap_or_default()).into())
            .collect()
    }

    /// Reads until the server closes the connection; returns what came
    /// before. Panics if it stays open past `within`.
    pub fn closed_within(&mut self, within: Duration) -> Vec<Msg> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        loop {
            match self.read(deadline) {
                Read1::Msg(m) => out.push(m),
                Read1::Closed => return out,
                Read1::TimedOut => panic!("connection still open after {within:?}: {out:?}"),
            }
        }
    }

    /// Whether nothing arrives (and the connection stays open) for `wait`.
    pub fn quiet_for(&mut self, wait: Duration) -> Result<(), Read1> {
        match self.read(Instant::now() + wait) {
            Read1::TimedOut => Ok(()),
            other => Err(other),
        }
    }
}

// Frontend message builders.

pub fn query(sql: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'Q', |b| put_cstr(b, sql));
    m
}

pub fn parse(name: &[u8], sql: &[u8], types: &[u32]) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'P', |b| {
        put_cstr(b, name);
        put_cstr(b, sql);
        b.extend_from_slice(&(types.len() as i16).to_be_bytes());
        for t in types {
            b.extend_from_slice(&t.to_be_bytes());
        }
    });
    m
}

/// A Bind with text parameters and all results in `result_format` (0 text,
/// 1 binary).
pub fn bind(portal: &[u8], stmt: &[u8], params: &[Option<Vec<u8>>], result_format: i16) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'B', |b| {
        put_cstr(b, portal);
        put_cstr(b, stmt);
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(params.len() as i16).to_be_bytes());
        for p in params {
            match p {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b.extend_from_slice(&1i16.to_be_bytes());
        b.extend_from_slice(&result_format.to_be_bytes());
    });
    m
}

pub fn describe(kind: u8, name: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'D', |b| {
        b.push(kind);
        put_cstr(b, name);
    });
    m
}

pub fn execute(portal: &[u8], max_rows: i32) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'E', |b| {
        put_cstr(b, portal);
        b.extend_from_slice(&max_rows.to_be_bytes());
    });
    m
}

pub fn close(kind: u8, name: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'C', |b| {
        b.push(kind);
        put_cstr(b, name);
    });
    m
}

/// A FunctionCall with text arguments and a text result.
pub fn function_call(oid: u32, args: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'F', |b| {
        b.extend_from_slice(&oid.to_be_bytes());
        b.extend_from_slice(&0i16.to_be_bytes());
        b.extend_from_slice(&(args.len() as i16).to_be_bytes());
        for a in args {
            match a {
                Some(v) => {
                    b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                    b.extend_from_slice(v);
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b.extend_from_slice(&0i16.to_be_bytes());
    });
    m
}

pub fn sync() -> Vec<u8> {
    b"S\0\0\0\x04".to_vec()
}

pub fn flush() -> Vec<u8> {
    b"H\0\0\0\x04".to_vec()
}

pub fn terminate() -> Vec<u8> {
    b"X\0\0\0\x04".to_vec()
}

pub fn copy_data(data: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'd', |b| b.extend_from_slice(data));
    m
}

pub fn copy_done() -> Vec<u8> {
    b"c\0\0\0\x04".to_vec()
}

pub fn copy_fail(why: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    put_message(&mut m, b'f', |b| put_cstr(b, why));
    m
}

/// An 8-byte special request (SSLRequest, GSSENCRequest) with `code`.
pub fn request(code: u32) -> Vec<u8> {
    let mut p = 8u32.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    p
}
