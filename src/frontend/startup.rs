//! From accept to the first ReadyForQuery: the startup packet (answering
//! SSLRequest/GSSENCRequest with 'N' and routing CancelRequests), the upstream
//! connection, and the authentication exchange, relayed so that PostgreSQL
//! itself verifies the client.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::buffer::Buffer;
use super::cancel::{CancelGuard, CancelTarget};
use super::error::SessionError;
use super::Proxy;
use crate::backend::{self, Upstream};
use crate::metrics::Metrics;
use crate::protocol::backend::{self as be, auth, Report, TransactionStatus};
use crate::protocol::frontend as fe;
use crate::protocol::startup::{self, StartupMessage, StartupPacket, MAX_STARTUP_PACKET};
use crate::protocol::{peek_header, sqlstate, HEADER_LEN};

/// The setting the read-only backstop holds on upstream sessions.
pub const READ_ONLY_DEFAULT: &str = "default_transaction_read_only";

/// Largest message accepted in either direction during authentication.
const MAX_AUTH_MESSAGE: usize = 64 * 1024;

/// Who is connected: the role PostgreSQL authenticated, and from where.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub database: String,
    pub application_name: String,
    pub client_addr: SocketAddr,
}

/// A client and its upstream session, authenticated and ready for queries.
pub struct Established {
    pub client: TcpStream,
    pub server: Upstream,
    /// Client bytes already read past the authentication exchange.
    pub client_buf: Buffer,
    /// Server bytes already read past the first ReadyForQuery.
    pub server_buf: Buffer,
    pub identity: Identity,
    pub status: TransactionStatus,
    pub client_encoding: String,
    /// standard_conforming_strings as the server reported it.
    pub standard_strings: bool,
    /// The upstream backend's process id, which the client sees unchanged.
    pub process_id: u32,
    pub cancel_guard: Option<CancelGuard>,
    /// Where the upstream cancels this session's queries.
    pub cancel_target: Option<CancelTarget>,
    /// CancelRequests for this session.
    pub cancels: tokio::sync::mpsc::UnboundedReceiver<()>,
}

/// Runs startup on a new client connection. `Ok(None)` means the connection
/// was fully handled (a CancelRequest, or authentication failed and the
/// server's error was relayed).
pub async fn establish(
    mut client: TcpStream,
    peer: SocketAddr,
    proxy: &Arc<Proxy>,
) -> Result<Option<Established>, SessionError> {
    let startup = loop {
        let packet = match read_startup_packet(&mut client).await? {
            Ok(p) => p,
            Err(report) => {
                Metrics::inc(&proxy.metrics.client_protocol_errors);
                send(&mut client, &report.to_bytes()).await?;
                return Ok(None);
            }
        };
        match startup::parse(&packet) {
            // TLS and GSS encryption are not offered (yet); clients fall back
            // to a plain connection or give up, as against such a server.
            Ok(StartupPacket::Ssl | StartupPacket::GssEnc) => send(&mut client, b"N").await?,
            Ok(StartupPacket::Cancel {
                process_id,
                secret_key,
            }) => {
                Metrics::inc(&proxy.metrics.cancel_requests);
                match proxy.cancels.lookup(process_id, secret_key) {
                    // The session decides: withdraw a held statement, or
                    // cancel upstream.
                    Some(entry) => {
                        let _ = entry.session.send(());
                    }
                    None => debug!(process_id, "cancel request with unknown keys"),
                }
                return Ok(None);
            }
            Ok(StartupPacket::Startup(m)) => break m,
            Err(_) => {
                Metrics::inc(&proxy.metrics.client_protocol_errors);
                let r = Report::fatal(sqlstate::PROTOCOL_VIOLATION, "invalid startup packet");
                send(&mut client, &r.to_bytes()).await?;
                return Ok(None);
            }
        }
    };
    // PostgreSQL takes the last of a parameter given twice; airlock's
    // policy, catalog and audit must be of the same database and role, so
    // a packet that could be read two ways is refused.
    if let Some(why) = ambiguous_startup(&startup) {
        Metrics::inc(&proxy.metrics.client_protocol_errors);
        let r = Report::fatal(sqlstate::PROTOCOL_VIOLATION, why);
        send(&mut client, &r.to_bytes()).await?;
        return Ok(None);
    }
    let (Some(user), Some(database)) = (startup.user(), startup.database()) else {
        let r = Report::fatal(
            sqlstate::PROTOCOL_VIOLATION,
            "no PostgreSQL user name specified in startup packet",
        );
        send(&mut client, &r.to_bytes()).await?;
        return Ok(None);
    };
    // The session's role is the one PostgreSQL authenticates; a role or
    // session authorization chosen at connection time would escape the
    // policy's rule against changing it.
    let forbidden = ["role", "session_authorization"];
    let sneaks_in = startup.params.iter().any(|(k, v)| {
        forbidden.contains(&k.to_ascii_lowercase().as_str())
            || (k == "options"
                && forbidden
                    .iter()
                    .any(|f| v.to_ascii_lowercase().replace('-', "_").contains(f)))
    });
    if sneaks_in {
        let r = Report::fatal(
            sqlstate::INSUFFICIENT_PRIVILEGE,
            "airlock does not allow choosing a role or session authorization at connection time",
        )
        .with_hint("Connect as the role itself.");
        send(&mut client, &r.to_bytes()).await?;
        return Ok(None);
    }
    let identity = Identity {
        user: user.to_string(),
        database: database.to_string(),
        application_name: startup.param("application_name").unwrap_or("").to_string(),
        client_addr: peer,
    };
    let active = proxy
        .metrics
        .sessions_active
        .load(std::sync::atomic::Ordering::Relaxed);
    if active as usize > proxy.config.max_client_connections {
        Metrics::inc(&proxy.metrics.sessions_refused);
        let r = Report::fatal(
            sqlstate::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        );
        send(&mut client, &r.to_bytes()).await?;
        return Ok(None);
    }

    let (mut server, upstream_addr) =
        match backend::connect(&proxy.config.upstream, proxy.config.connect_timeout).await {
            Ok(s) => s,
            Err(e) => {
                Metrics::inc(&proxy.metrics.upstream_connect_errors);
                let r = Report::fatal(
                    sqlstate::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
                    e.to_string(),
                );
                send(&mut client, &r.to_bytes()).await?;
                return Err(e.into());
            }
        };
    // The backstop: upstream sessions are read-only unless the session
    // switches them for a statement the policy let through (see
    // docs/backstop.md). The client keeps seeing the value it asked for.
    let backstop = proxy.config.read_only_backstop && proxy.config.classification;
    let client_read_only = startup
        .param(READ_ONLY_DEFAULT)
        .unwrap_or("off")
        .to_string();
    let packet = if backstop {
        startup.with_param(READ_ONLY_DEFAULT, "on")
    } else {
        startup.raw.clone()
    };
    server
        .write_all(&packet)
        .await
        .map_err(SessionError::Server)?;

    let mut auth = AuthRelay {
        client,
        server,
        client_buf: Buffer::with_capacity(1024),
        server_buf: Buffer::with_capacity(8192),
        out: Vec::with_capacity(1024),
    };
    let mut client_encoding = String::from("SQL_ASCII");
    let mut standard_strings = true;
    let mut process_id = 0;
    let mut cancel_guard = None;
    let mut cancel_target = None;
    let (cancel_tx, cancels) = tokio::sync::mpsc::unbounded_channel();
    loop {
        let (tag, len) = auth.server_message().await?;
        let body = &auth.server_buf.bytes()[HEADER_LEN..HEADER_LEN + len];
        match tag {
            be::AUTHENTICATION => {
                let code =
                    be::auth_code(body).map_err(|e| SessionError::ServerProtocol(e.to_string()))?;
                if code == auth::SASL {
                    let filtered = be::filter_sasl_mechanisms(body)
                        .map_err(|e| SessionError::ServerProtocol(e.to_string()))?;
                    auth.out.extend_from_slice(&filtered);
                } else {
                    auth.out
                        .extend_from_slice(&auth.server_buf.bytes()[..HEADER_LEN + len]);
                }
                auth.server_buf.consume(HEADER_LEN + len);
                if auth::expects_response(code) {
                    auth.flush_to_client().await?;
                    auth.relay_client_response().await?;
                }
                continue;
            }
            be::BACKEND_KEY_DATA => {
                if let Some((pid, key)) = be::parse_backend_key_data(body) {
                    let target = CancelTarget {
                        upstream: upstream_addr.clone(),
                        process_id: pid,
                        secret_key: key,
                    };
                    cancel_target = Some(target.clone());
                    let (secret, guard) = proxy.cancels.register(target, cancel_tx.clone());
                    process_id = pid;
                    cancel_guard = Some(guard);
                    be::backend_key_data(&mut auth.out, pid, secret);
                    auth.server_buf.consume(HEADER_LEN + len);
                    continue;
                }
            }
            be::PARAMETER_STATUS => match be::parse_parameter_status(body) {
                Ok((b"client_encoding", v)) => {
                    client_encoding = String::from_utf8_lossy(v).into_owned();
                }
                Ok((b"standard_conforming_strings", v)) => standard_strings = v == b"on",
                Ok((name, _)) if backstop && name == READ_ONLY_DEFAULT.as_bytes() => {
                    be::parameter_status(&mut auth.out, READ_ONLY_DEFAULT, &client_read_only);
                    auth.server_buf.consume(HEADER_LEN + len);
                    continue;
                }
                _ => {}
            },
            be::ERROR_RESPONSE => {
                // Authentication failed, or the server refused the session:
                // the client gets PostgreSQL's own error, and we are done.
                auth.out
                    .extend_from_slice(&auth.server_buf.bytes()[..HEADER_LEN + len]);
                auth.flush_to_client().await?;
                return Ok(None);
            }
            be::READY_FOR_QUERY => {
                let status = body
                    .first()
                    .and_then(|&b| TransactionStatus::from_byte(b))
                    .ok_or_else(|| SessionError::ServerProtocol("bad ReadyForQuery".into()))?;
                auth.out
                    .extend_from_slice(&auth.server_buf.bytes()[..HEADER_LEN + len]);
                auth.server_buf.consume(HEADER_LEN + len);
                auth.flush_to_client().await?;
                return Ok(Some(Established {
                    client: auth.client,
                    server: auth.server,
                    client_buf: auth.client_buf,
                    server_buf: auth.server_buf,
                    identity,
                    status,
                    client_encoding,
                    standard_strings,
                    process_id,
                    cancel_guard,
                    cancel_target,
                    cancels,
                }));
            }
            be::NOTICE_RESPONSE | be::NEGOTIATE_PROTOCOL_VERSION => {}
            other => {
                return Err(SessionError::ServerProtocol(format!(
                    "unexpected message type {:?} during startup",
                    other as char
                )))
            }
        }
        auth.out
            .extend_from_slice(&auth.server_buf.bytes()[..HEADER_LEN + len]);
        auth.server_buf.consume(HEADER_LEN + len);
    }
}

/// Reads one untagged startup packet, checking its announced length first.
/// Why a startup packet could be read in two ways, if it can: a parameter
/// named twice (PostgreSQL takes the last, a reader of the first would see
/// another database or role), or a role, database or `options` that is not
/// UTF-8 (airlock would look up a name the server does not use).
fn ambiguous_startup(startup: &StartupMessage) -> Option<String> {
    for (i, (name, _)) in startup.params.iter().enumerate() {
        if startup.params[..i].iter().any(|(n, _)| n == name) {
            return Some(format!(
                "startup parameter \"{name}\" is given more than once"
            ));
        }
        if name.contains('\u{FFFD}') {
            return Some("a startup parameter name is not valid UTF-8".into());
        }
    }
    for name in ["user", "database", "options"] {
        if startup.param(name).is_some_and(|v| v.contains('\u{FFFD}')) {
            return Some(format!("startup parameter \"{name}\" is not valid UTF-8"));
        }
    }
    None
}

async fn read_startup_packet(
    client: &mut TcpStream,
) -> Result<Result<Vec<u8>, Report>, SessionError> {
    let mut len = [0u8; 4];
    client
        .read_exact(&mut len)
        .await
        .map_err(SessionError::Client)?;
    let n = u32::from_be_bytes(len) as usize;
    if !(8..=MAX_STARTUP_PACKET).contains(&n) {
        return Ok(Err(Report::fatal(
            sqlstate::PROTOCOL_VIOLATION,
            "invalid length of startup packet",
        )));
    }
    let mut packet = vec![0u8; n];
    packet[..4].copy_from_slice(&len);
    client
        .read_exact(&mut packet[4..])
        .await
        .map_err(SessionError::Client)?;
    Ok(Ok(packet))
}

async fn send(client: &mut TcpStream, bytes: &[u8]) -> Result<(), SessionError> {
    client.write_all(bytes).await.map_err(SessionError::Client)
}

/// The authentication exchange: server messages are relayed (batched until
/// the server waits for the client), client responses are relayed one by one.
struct AuthRelay {
    client: TcpStream,
    server: Upstream,
    client_buf: Buffer,
    server_buf: Buffer,
    out: Vec<u8>,
}

impl AuthRelay {
    /// Waits until a whole server message is buffered; returns its tag and
    /// body length.
    async fn server_message(&mut self) -> Result<(u8, usize), SessionError> {
        loop {
            match peek_header(self.server_buf.bytes()) {
                Some(Ok((tag, len)))
                    if len <= MAX_AUTH_MESSAGE && self.server_buf.len() >= HEADER_LEN + len =>
                {
                    return Ok((tag, len));
                }
                Some(Ok((_, len))) if len <= MAX_AUTH_MESSAGE => {}
                Some(_) => {
                    return Err(SessionError::ServerProtocol(
                        "invalid message during startup".into(),
                    ))
                }
                None => {}
            }
            // About to wait for the server: let the client see what we have.
            self.flush_to_client().await?;
            let n = self
                .server
                .read(self.server_buf.spare_mut(4096))
                .await
                .map_err(SessionError::Server)?;
            if n == 0 {
                return Err(SessionError::Server(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            self.server_buf.commit(n);
        }
    }

    async fn flush_to_client(&mut self) -> Result<(), SessionError> {
        if !self.out.is_empty() {
            send(&mut self.client, &self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Relays one PasswordMessage / SASLResponse from the client.
    async fn relay_client_response(&mut self) -> Result<(), SessionError> {
        loop {
            match peek_header(self.client_buf.bytes()) {
                Some(Ok((fe::PASSWORD_MESSAGE, len)))
                    if len <= MAX_AUTH_MESSAGE && self.client_buf.len() >= HEADER_LEN + len =>
                {
                    self.server
                        .write_all(&self.client_buf.bytes()[..HEADER_LEN + len])
                        .await
                        .map_err(SessionError::Server)?;
                    self.client_buf.consume(HEADER_LEN + len);
                    return Ok(());
                }
                Some(Ok((fe::PASSWORD_MESSAGE, len))) if len <= MAX_AUTH_MESSAGE => {}
                Some(_) => {
                    let r =
                        Report::fatal(sqlstate::PROTOCOL_VIOLATION, "expected password response");
                    send(&mut self.client, &r.to_bytes()).await?;
                    return Err(SessionError::ClientProtocol(
                        "unexpected message during authentication".into(),
                    ));
                }
                None => {}
            }
            let n = self
                .client
                .read(self.client_buf.spare_mut(1024))
                .await
                .map_err(SessionError::Client)?;
            if n == 0 {
                return Err(SessionError::Client(
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            self.client_buf.commit(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ambiguous_startup;
    use crate::protocol::startup::{parse, startup_message, StartupPacket};

    fn message(params: &[(&str, &str)]) -> crate::protocol::startup::StartupMessage {
        match parse(&startup_message(params)) {
            Ok(StartupPacket::Startup(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        let m = message(&[
            ("user", "a"),
            ("database", "x"),
            ("application_name", "p"),
            ("database", "y"),
        ]);
        let why = ambiguous_startup(&m).expect("refused");
        assert!(why.contains("\"database\""), "{why}");
        let m = message(&[
            ("user", "a"),
            ("client_encoding", "UTF8"),
            ("client_encoding", "WIN1251"),
        ]);
        assert!(ambiguous_startup(&m).is_some());
        let m = message(&[
            ("user", "a"),
            ("database", "x"),
            ("client_encoding", "UTF8"),
        ]);
        assert_eq!(ambiguous_startup(&m), None);
    }

    #[test]
    fn a_name_that_is_not_utf8_is_refused() {
        let mut raw = startup_message(&[("user", "a"), ("database", "caf\u{e9}")]);
        // Rewrite the UTF-8 e-acute (two bytes) as Latin-1 (one byte).
        let at = raw.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
        raw.splice(at..at + 2, [0xe9]);
        let len = raw.len() as u32;
        raw[..4].copy_from_slice(&len.to_be_bytes());
        let Ok(StartupPacket::Startup(m)) = parse(&raw) else {
            panic!()
        };
        assert!(ambiguous_startup(&m).is_some());
    }
}
