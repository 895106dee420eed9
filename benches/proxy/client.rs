//! The smallest PostgreSQL client the benchmark needs: connect, send a
//! StartupMessage, and wait for ReadyForQuery. Used to tell when a server is
//! ready and to hold idle connections open for the memory measurement.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use airlock::protocol::{peek_header, startup, HEADER_LEN};

/// Opens a session as `postgres` on `database` at `127.0.0.1:port` (trust
/// authentication) and returns the socket once the server is ready for
/// queries. Fails on an ErrorResponse, a closed socket, or after `timeout`
/// without progress.
pub fn connect(port: u16, database: &str, timeout: Duration) -> Result<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut socket = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_nodelay(true)?;
    socket.write_all(&startup::startup_message(&[
        ("user", "postgres"),
        ("database", database),
    ]))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut at = 0;
        while let Some(header) = peek_header(&buf[at..]) {
            let Ok((tag, len)) = header else {
                bail!("{addr}: invalid message length during startup");
            };
            if buf.len() - at < HEADER_LEN + len {
                break;
            }
            match tag {
                b'Z' => return Ok(socket),
                b'E' => {
                    let body = &buf[at + HEADER_LEN..at + HEADER_LEN + len];
                    bail!("{addr}: server refused the session: {}", error_text(body));
                }
                _ => at += HEADER_LEN + len,
            }
        }
        buf.drain(..at);
        match socket.read(&mut chunk) {
            Ok(0) => bail!("{addr}: connection closed during startup"),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e).with_context(|| format!("{addr}: reading during startup")),
        }
    }
}

/// Ends a session politely with a Terminate message.
pub fn terminate(mut socket: TcpStream) {
    let _ = socket.write_all(b"X\0\0\0\x04");
}

/// The SQLSTATE and message fields of an ErrorResponse body.
fn error_text(body: &[u8]) -> String {
    let mut code = "";
    let mut message = "";
    for field in body.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let text = std::str::from_utf8(&field[1..]).unwrap_or("?");
        match field[0] {
            b'C' => code = text,
            b'M' => message = text,
            _ => {}
        }
    }
    format!("{code} {message}")
}
