//! A minimal blocking PostgreSQL session for what real drivers do not
//! expose: the BackendKeyData a client receives, and CancelRequests with
//! keys of the test's choosing. Only trust authentication is supported.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One backend message: its tag and body.
pub type Message = (u8, Vec<u8>);
/// Result rows as text, NULL as `None`.
pub type Rows = Vec<Vec<Option<String>>>;
/// An error's (field code, value) pairs.
pub type Fields = Vec<(u8, String)>;

/// A session speaking protocol 3.0 over a plain socket.
pub struct RawConn {
    stream: TcpStream,
    /// From BackendKeyData.
    pub process_id: u32,
    pub secret_key: u32,
    /// ParameterStatus messages received during startup.
    pub parameters: Vec<(String, String)>,
}

impl RawConn {
    /// Starts a session as `user` on `database` at 127.0.0.1:`port`; panics
    /// unless the server accepts it without a password.
    pub fn connect(port: u16, user: &str, database: &str) -> RawConn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(40)))
            .expect("set timeout");
        let mut body = 196608u32.to_be_bytes().to_vec();
        for (k, v) in [("user", user), ("database", database)] {
            for s in [k, v] {
                body.extend_from_slice(s.as_bytes());
                body.push(0);
            }
        }
        body.push(0);
        let mut conn = RawConn {
            stream,
            process_id: 0,
            secret_key: 0,
            parameters: Vec::new(),
        };
        let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        packet.extend_from_slice(&body);
        conn.stream.write_all(&packet).expect("send startup");
        loop {
            let (tag, body) = conn.read_message();
            match tag {
                b'R' => assert_eq!(&body[..4], &[0, 0, 0, 0], "expected AuthenticationOk"),
                b'K' => {
                    conn.process_id = u32::from_be_bytes(body[..4].try_into().unwrap());
                    conn.secret_key = u32::from_be_bytes(body[4..8].try_into().unwrap());
                }
                b'S' => {
                    let mut parts = body.split(|&b| b == 0).map(lossy);
                    let name = parts.next().unwrap_or_default();
                    let value = parts.next().unwrap_or_default();
                    conn.parameters.push((name, value));
                }
                b'E' => panic!("startup failed: {:?}", error_fields(&body)),
                b'Z' => return conn,
                _ => {}
            }
        }
    }

    /// Sends a simple Query without waiting for its answer.
    pub fn send_query(&mut self, sql: &str) {
        let mut m = vec![b'Q'];
        m.extend_from_slice(&((sql.len() + 5) as u32).to_be_bytes());
        m.extend_from_slice(sql.as_bytes());
        m.push(0);
        self.stream.write_all(&m).expect("send query");
    }

    /// Every message up to and including the next ReadyForQuery.
    pub fn read_until_ready(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        loop {
            let m = self.read_message();
            let done = m.0 == b'Z';
            out.push(m);
            if done {
                return out;
            }
        }
    }

    /// Runs `sql` and returns its rows as text, or the error's fields.
    pub fn query(&mut self, sql: &str) -> Result<Rows, Fields> {
        self.send_query(sql);
        let messages = self.read_until_ready();
        if let Some((_, body)) = messages.iter().find(|(t, _)| *t == b'E') {
            return Err(error_fields(body));
        }
        Ok(messages
            .iter()
            .filter(|(t, _)| *t == b'D')
            .map(|(_, body)| data_row(body))
            .collect())
    }

    /// Reads one message; panics on EOF or timeout.
    pub fn read_message(&mut self) -> Message {
        let mut header = [0u8; 5];
        self.stream.read_exact(&mut header).expect("read header");
        let len = u32::from_be_bytes(header[1..].try_into().unwrap()) as usize;
        assert!(len >= 4, "bad message length {len}");
        let mut body = vec![0u8; len - 4];
        self.stream.read_exact(&mut body).expect("read body");
        (header[0], body)
    }
}

impl Drop for RawConn {
    fn drop(&mut self) {
        let _ = self.stream.write_all(b"X\0\0\0\x04");
    }
}

/// Sends a CancelRequest with the given keys to 127.0.0.1:`port` and waits
/// until the receiver closes the connection, i.e. has acted on it.
pub fn send_cancel(port: u16, process_id: u32, secret_key: u32) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect for cancel");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    let mut m = 16u32.to_be_bytes().to_vec();
    m.extend_from_slice(&80877102u32.to_be_bytes());
    m.extend_from_slice(&process_id.to_be_bytes());
    m.extend_from_slice(&secret_key.to_be_bytes());
    s.write_all(&m).expect("send cancel");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "a CancelRequest gets no answer: {rest:?}");
}

/// The (field code, value) pairs of an ErrorResponse or NoticeResponse body.
pub fn error_fields(body: &[u8]) -> Fields {
    body.split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0], lossy(&f[1..])))
        .collect()
}

/// The value of field `code` (b'C' for the SQLSTATE) of an error.
pub fn field(fields: &[(u8, String)], code: u8) -> Option<&str> {
    fields
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, v)| v.as_str())
}

/// The columns of a DataRow body as text.
fn data_row(body: &[u8]) -> Vec<Option<String>> {
    let n = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        at += 4;
        if len < 0 {
            out.push(None);
        } else {
            out.push(Some(lossy(&body[at..at + len as usize])));
            at += len as usize;
        }
    }
    out
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
