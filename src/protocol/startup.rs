//! The untagged packets a client sends before the session starts:
//! StartupMessage, SSLRequest, GSSENCRequest and CancelRequest.

use super::Malformed;

/// Protocol 3.0, the version every current client speaks.
pub const PROTOCOL_3_0: u32 = 196_608;
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// PostgreSQL refuses startup packets over 10000 bytes; so do we.
pub const MAX_STARTUP_PACKET: usize = 10_000;

/// A decoded first packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    Ssl,
    GssEnc,
    Cancel { process_id: u32, secret_key: u32 },
    Startup(StartupMessage),
}

/// A StartupMessage: the protocol version and the name/value parameters, kept
/// in the order the client sent them so they are forwarded unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    pub protocol: u32,
    pub params: Vec<(String, String)>,
    /// The packet exactly as received, length word included.
    pub raw: Vec<u8>,
}

impl StartupMessage {
    /// The value of a startup parameter, if the client sent it.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The role the client asks to connect as.
    pub fn user(&self) -> Option<&str> {
        self.param("user")
    }

    /// The database, which defaults to the user name as in PostgreSQL.
    pub fn database(&self) -> Option<&str> {
        self.param("database").or_else(|| self.user())
    }
}

/// Decodes a first packet. `packet` is the whole packet including its
/// four-byte length.
pub fn parse(packet: &[u8]) -> Result<StartupPacket, Malformed> {
    const WHAT: &str = "startup";
    if packet.len() < 8 {
        return Err(Malformed(WHAT));
    }
    let code = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    match code {
        SSL_REQUEST_CODE if packet.len() == 8 => Ok(StartupPacket::Ssl),
        GSSENC_REQUEST_CODE if packet.len() == 8 => Ok(StartupPacket::GssEnc),
        CANCEL_REQUEST_CODE if packet.len() == 16 => {
            let pid = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
            let key = u32::from_be_bytes([packet[12], packet[13], packet[14], packet[15]]);
            Ok(StartupPacket::Cancel {
                process_id: pid,
                secret_key: key,
            })
        }
        // Major version 3; the minor version is negotiated by the server.
        c if c >> 16 == 3 => {
            let mut params = Vec::new();
            let mut rest = &packet[8..];
            loop {
                let nul = rest.iter().position(|&b| b == 0).ok_or(Malformed(WHAT))?;
                if nul == 0 {
                    if rest.len() != 1 {
                        return Err(Malformed(WHAT));
                    }
                    break;
                }
                let name = String::from_utf8_lossy(&rest[..nul]).into_owned();
                rest = &rest[nul + 1..];
                let vnul = rest.iter().position(|&b| b == 0).ok_or(Malformed(WHAT))?;
                let value = String::from_utf8_lossy(&rest[..vnul]).into_owned();
                rest = &rest[vnul + 1..];
                params.push((name, value));
            }
            Ok(StartupPacket::Startup(StartupMessage {
                protocol: c,
                params,
                raw: packet.to_vec(),
            }))
        }
        _ => Err(Malformed(WHAT)),
    }
}

impl StartupMessage {
    /// The packet with `name` set to `value`, replacing any value the
    /// client gave it (a name/value parameter is applied after `options`,
    /// so it wins over `-c name=...` there too).
    pub fn with_param(&self, name: &str, value: &str) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 0];
        p.extend_from_slice(&self.protocol.to_be_bytes());
        for (k, v) in self.params.iter().filter(|(k, _)| k != name) {
            super::put_cstr(&mut p, k.as_bytes());
            super::put_cstr(&mut p, v.as_bytes());
        }
        super::put_cstr(&mut p, name.as_bytes());
        super::put_cstr(&mut p, value.as_bytes());
        p.push(0);
        let len = p.len() as u32;
        p[..4].copy_from_slice(&len.to_be_bytes());
        p
    }
}

/// Builds a CancelRequest packet.
pub fn cancel_request(process_id: u32, secret_key: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..4].copy_from_slice(&16u32.to_be_bytes());
    p[4..8].copy_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
    p[8..12].copy_from_slice(&process_id.to_be_bytes());
    p[12..].copy_from_slice(&secret_key.to_be_bytes());
    p
}

/// Builds a StartupMessage packet from parameters.
pub fn startup_message(params: &[(&str, &str)]) -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0];
    p.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    for (k, v) in params {
        super::put_cstr(&mut p, k.as_bytes());
        super::put_cstr(&mut p, v.as_bytes());
    }
    p.push(0);
    let len = p.len() as u32;
    p[..4].copy_from_slice(&len.to_be_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_round_trip() {
        let raw = startup_message(&[("user", "alice"), ("application_name", "psql")]);
        let StartupPacket::Startup(m) = parse(&raw).unwrap() else {
            panic!("not a startup message")
        };
        assert_eq!(m.user(), Some("alice"));
        assert_eq!(m.database(), Some("alice"));
        assert_eq!(m.param("application_name"), Some("psql"));
        assert_eq!(m.raw, raw);
    }

    #[test]
    fn a_parameter_is_replaced_and_the_rest_kept() {
        let raw = startup_message(&[
            ("user", "a"),
            ("default_transaction_read_only", "off"),
            ("x", "y"),
        ]);
        let StartupPacket::Startup(m) = parse(&raw).unwrap() else {
            panic!()
        };
        let StartupPacket::Startup(m2) =
            parse(&m.with_param("default_transaction_read_only", "on")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            m2.params,
            vec![
                ("user".to_string(), "a".to_string()),
                ("x".to_string(), "y".to_string()),
                (
                    "default_transaction_read_only".to_string(),
                    "on".to_string()
                )
            ]
        );
    }

    #[test]
    fn special_requests() {
        let mut ssl = 8u32.to_be_bytes().to_vec();
        ssl.extend_from_slice(&SSL_REQUEST_CODE.to_be_bytes());
        assert_eq!(parse(&ssl), Ok(StartupPacket::Ssl));
        assert_eq!(
            parse(&cancel_request(7, 9)),
            Ok(StartupPacket::Cancel {
                process_id: 7,
                secret_key: 9
            })
        );
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse(b"\0\0\0\x08\x12\x34\x56\x78").is_err());
        assert!(parse(b"\0\0\0\x0c\0\x03\0\0user").is_err());
        assert!(parse(b"\0\0").is_err());
    }
}
