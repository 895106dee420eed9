//! Why a client session ended, and whether that is worth more than a debug
//! line in the log.

use crate::backend::ConnectError;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client i/o: {0}")]
    Client(#[source] std::io::Error),
    #[error("upstream i/o: {0}")]
    Server(#[source] std::io::Error),
    #[error("client protocol violation: {0}")]
    ClientProtocol(String),
    #[error("upstream protocol violation: {0}")]
    ServerProtocol(String),
    #[error(transparent)]
    Connect(#[from] ConnectError),
}

impl SessionError {
    /// An ordinary hang-up by the client, not worth a warning.
    pub fn is_disconnect(&self) -> bool {
        match self {
            SessionError::Client(e) => matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}
