//! Connections to the upstream PostgreSQL server.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::frontend::cancel::CancelTarget;
use crate::protocol::startup;

/// Why the upstream could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("could not connect to upstream server {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not connect to upstream server {addr}: timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
}

/// Opens a TCP connection to the upstream with Nagle's algorithm off: every
/// batch the proxy writes is a complete set of messages the server should see
/// at once.
pub async fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout {
            addr: addr.to_string(),
            after: timeout,
        })?
        .map_err(|source| ConnectError::Io {
            addr: addr.to_string(),
            source,
        })?;
    stream
        .set_nodelay(true)
        .map_err(|source| ConnectError::Io {
            addr: addr.to_string(),
            source,
        })?;
    Ok(stream)
}

/// Sends a CancelRequest for `target` on a new connection, as PostgreSQL
/// expects, and closes it.
pub async fn send_cancel(target: CancelTarget, timeout: Duration) -> std::io::Result<()> {
    let fut = async {
        let mut s = TcpStream::connect(target.upstream).await?;
        s.write_all(&startup::cancel_request(
            target.process_id,
            target.secret_key,
        ))
        .await?;
        s.shutdown().await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}
