//! SQLSTATE codes the proxy itself reports, named as in PostgreSQL's
//! `errcodes.txt`.

pub const PROTOCOL_VIOLATION: &str = "08P01";
pub const SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION: &str = "08001";
pub const CONNECTION_FAILURE: &str = "08006";
pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
pub const ADMIN_SHUTDOWN: &str = "57P01";
pub const QUERY_CANCELED: &str = "57014";
pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
pub const INTERNAL_ERROR: &str = "XX000";
pub const SYSTEM_ERROR: &str = "58000";
pub const TOO_MANY_CONNECTIONS: &str = "53300";
pub const SYNTAX_ERROR: &str = "42601";
pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
