//! Connections to the upstream PostgreSQL server, over TCP or, when the
//! upstream host is a directory as in libpq (`/var/run/postgresql:5432`),
//! over the server's Unix-domain socket in it.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{tcp, unix, TcpStream, UnixStream};

use crate::frontend::cancel::CancelTarget;
use crate::protocol::startup;

/// Why the upstream could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("could not connect to upstream server {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("could not connect to upstream server {addr}: timed out after {after:?}")]
    Timeout { addr: String, after: Duration },
}

/// Where the upstream listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamAddr {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

/// The socket path PostgreSQL uses for `port` in directory `dir`.
fn socket_path(addr: &str) -> Option<PathBuf> {
    let (host, port) = addr.rsplit_once(':')?;
    host.starts_with('/')
        .then(|| PathBuf::from(host).join(format!(".s.PGSQL.{port}")))
}

/// A connection to the upstream.
pub enum Upstream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Connects to `addr` (`host:port`, or `/socket/dir:port`). TCP connections
/// have Nagle's algorithm off: every batch the proxy writes is a complete set
/// of messages the server should see at once.
pub async fn connect(
    addr: &str,
    timeout: Duration,
) -> Result<(Upstream, UpstreamAddr), ConnectError> {
    let io_err = |source| ConnectError::Io {
        addr: addr.to_string(),
        source,
    };
    let connect = async {
        match socket_path(addr) {
            Some(path) => {
                let s = UnixStream::connect(&path).await?;
                Ok((Upstream::Unix(s), UpstreamAddr::Unix(path)))
            }
            None => {
                let s = TcpStream::connect(addr).await?;
                s.set_nodelay(true)?;
                let peer = s.peer_addr()?;
                Ok((Upstream::Tcp(s), UpstreamAddr::Tcp(peer)))
            }
        }
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| ConnectError::Timeout {
            addr: addr.to_string(),
            after: timeout,
        })?
        .map_err(io_err)
}

/// Sends a CancelRequest for `target` on a new connection, as PostgreSQL
/// expects, and closes it.
pub async fn send_cancel(target: CancelTarget, timeout: Duration) -> io::Result<()> {
    let packet = startup::cancel_request(target.process_id, target.secret_key);
    let fut = async {
        let mut s = match &target.upstream {
            UpstreamAddr::Tcp(a) => Upstream::Tcp(TcpStream::connect(a).await?),
            UpstreamAddr::Unix(p) => Upstream::Unix(UnixStream::connect(p).await?),
        };
        s.write_all(&packet).await?;
        s.shutdown().await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

impl Upstream {
    /// Splits into halves the session can read and write independently.
    pub fn into_split(self) -> (UpstreamRead, UpstreamWrite) {
        match self {
            Upstream::Tcp(s) => {
                let (r, w) = s.into_split();
                (UpstreamRead::Tcp(r), UpstreamWrite::Tcp(w))
            }
            Upstream::Unix(s) => {
                let (r, w) = s.into_split();
                (UpstreamRead::Unix(r), UpstreamWrite::Unix(w))
            }
        }
    }
}

/// The read half of an upstream connection.
pub enum UpstreamRead {
    Tcp(tcp::OwnedReadHalf),
    Unix(unix::OwnedReadHalf),
}

/// The write half of an upstream connection.
pub enum UpstreamWrite {
    Tcp(tcp::OwnedWriteHalf),
    Unix(unix::OwnedWriteHalf),
}

impl UpstreamWrite {
    /// Writes without waiting; `WouldBlock` when the socket is full.
    #[inline]
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            UpstreamWrite::Tcp(w) => w.try_write(buf),
            UpstreamWrite::Unix(w) => w.try_write(buf),
        }
    }

    /// Waits until the socket can take more bytes.
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            UpstreamWrite::Tcp(w) => w.writable().await,
            UpstreamWrite::Unix(w) => w.writable().await,
        }
    }
}

macro_rules! delegate_read {
    ($t:ty) => {
        impl AsyncRead for $t {
            #[inline]
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    };
}

macro_rules! delegate_write {
    ($t:ty) => {
        impl AsyncWrite for $t {
            #[inline]
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                    Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_flush(cx),
                    Self::Unix(s) => Pin::new(s).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    Self::Unix(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    };
}

delegate_read!(Upstream);
delegate_read!(UpstreamRead);
delegate_write!(Upstream);
delegate_write!(UpstreamWrite);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_directories_name_unix_sockets() {
        assert_eq!(
            socket_path("/var/run/postgresql:5433"),
            Some(PathBuf::from("/var/run/postgresql/.s.PGSQL.5433"))
        );
        assert_eq!(socket_path("db.example:5432"), None);
    }
}
