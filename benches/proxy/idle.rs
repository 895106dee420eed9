//! Memory per idle client connection: a proxy's resident set size before
//! and while it holds many sessions that sit at ReadyForQuery.

use std::net::TcpStream;
use std::time::Duration;

use anyhow::Result;

use crate::client;
use crate::machine::rss_kib;
use crate::pgbench::DATABASE;
use crate::servers::Server;

/// Threads opening connections at once; PostgreSQL forks one backend per
/// session behind the proxy, so more than a few gains nothing.
const OPENERS: usize = 4;

/// A proxy's resident memory, idle and with the connections open.
#[derive(Debug, Clone, Copy)]
pub struct IdleMemory {
    pub connections: usize,
    pub idle_kib: u64,
    pub loaded_kib: u64,
}

impl IdleMemory {
    /// Growth per connection, in KiB.
    pub fn per_connection_kib(&self) -> f64 {
        self.loaded_kib.saturating_sub(self.idle_kib) as f64 / self.connections as f64
    }
}

/// Reads the server's RSS, opens `connections` sessions through it, reads
/// the RSS again and closes them. Fails if any session cannot be opened.
pub fn measure(server: &mut Server, connections: usize) -> Result<IdleMemory> {
    server.check_alive()?;
    let idle_kib = rss_kib(server.pid())?;
    let port = server.port;
    let sockets: Vec<TcpStream> = std::thread::scope(|scope| {
        let openers: Vec<_> = (0..OPENERS)
            .map(|i| {
                let share = connections / OPENERS + usize::from(i < connections % OPENERS);
                scope.spawn(move || -> Result<Vec<TcpStream>> {
                    (0..share)
                        .map(|_| client::connect(port, DATABASE, Duration::from_secs(30)))
                        .collect()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(connections);
        let mut failure = None;
        for opener in openers {
            match opener.join().expect("opener thread panicked") {
                Ok(sockets) => all.extend(sockets),
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(all),
        }
    })?;
    // Let the proxy finish whatever it does after a session starts.
    std::thread::sleep(Duration::from_millis(500));
    server.check_alive()?;
    let loaded_kib = rss_kib(server.pid())?;
    for socket in sockets {
        client::terminate(socket);
    }
    Ok(IdleMemory {
        connections,
        idle_kib,
        loaded_kib,
    })
}
