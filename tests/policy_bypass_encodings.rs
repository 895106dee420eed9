//! Issue 10, class 8: identifiers sent in the session's client encoding.
//! A view over code that writes is planted under a Cyrillic or Japanese
//! name, and a decoy table under the Latin-1 reading of the same bytes in
//! that encoding: a proxy that reads the bytes as Latin-1 sees a read of
//! the table, the server runs the view. The encoding is set at startup, by
//! SET, by set_config (simple and extended), or by a SET pipelined with the
//! Parse it affects. Each byte sequence is sent straight to PostgreSQL
//! first (the view must write there), then through the proxy (nothing may
//! change; the read must be refused).

mod common;
mod planted;

use common::rawpg::*;
use planted::{encode, Arena, RawAttack, ATTACKER_APP};

/// How the attacker's session gets its client encoding.
#[derive(Clone, Copy, Debug)]
enum How {
    Startup,
    Set,
    SetConfigSimple,
    SetConfigExtended,
    /// A SET in a Query sent in the same write as the Parse it affects.
    SetPipelined,
}

/// How the read is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Read {
    Simple,
    SimpleInBlock,
    Extended,
    ExtendedInBlock,
}

fn extended(sql: &[u8]) -> Vec<u8> {
    [
        parse(b"", sql, &[]),
        bind(b"", b"", &[], 0),
        execute(b"", 0),
        sync(),
    ]
    .concat()
}

struct Case {
    enc: &'static str,
    name: &'static str,
    quoted: bool,
    how: How,
    read: Read,
}

async fn attack(admin: &tokio_postgres::Client, c: &Case) -> RawAttack {
    let (bytes, latin1) = encode(admin, c.name, c.enc).await;
    let plant = format!(
        "CREATE VIEW public.\"{name}\" AS SELECT public.hit('{enc}') AS ok,
             public.local_hit('{enc}') AS ok2;
         CREATE TABLE public.\"{latin1}\" (ok boolean, ok2 boolean);
         INSERT INTO public.\"{latin1}\" VALUES (true, true);",
        name = c.name,
        enc = c.enc,
    );
    let label = format!(
        "{} {} identifier {} (encoding by {:?}), read {:?}",
        c.enc,
        if c.quoted { "quoted" } else { "unquoted" },
        c.name,
        c.how,
        c.read
    );
    let mut a = RawAttack::new(&label, &plant);
    let ident = if c.quoted {
        [b"\"".as_slice(), &bytes, b"\""].concat()
    } else {
        bytes.clone()
    };
    let sql = [b"SELECT * FROM ".as_slice(), &ident].concat();
    let set_sql = format!("SET client_encoding TO '{}'", c.enc);
    let set_config = format!("SELECT set_config('client_encoding', '{}', false)", c.enc);
    match c.how {
        How::Startup => {
            a = a.startup(&[
                ("user", "postgres"),
                ("database", "{db}"),
                ("application_name", ATTACKER_APP),
                ("client_encoding", c.enc),
            ])
        }
        How::Set => a = a.then(query(set_sql.as_bytes()), 1),
        How::SetConfigSimple => a = a.then(query(set_config.as_bytes()), 1),
        How::SetConfigExtended => a = a.then(extended(set_config.as_bytes()), 1),
        How::SetPipelined => {}
    }
    let in_block = matches!(c.read, Read::SimpleInBlock | Read::ExtendedInBlock);
    if in_block {
        a = a.then(query(b"BEGIN"), 1);
    }
    let read = match c.read {
        Read::Simple | Read::SimpleInBlock => query(&sql),
        Read::Extended | Read::ExtendedInBlock => extended(&sql),
    };
    a = match c.how {
        How::SetPipelined => a.attack([query(set_sql.as_bytes()), read].concat(), 2),
        _ => a.attack(read, 1),
    };
    if in_block {
        a = a.then(query(b"COMMIT"), 1);
    }
    a
}

async fn run_cases(cases: &[Case]) {
    let mut arena = Arena::new();
    let admin = common::connect(&common::direct_conninfo("postgres", "postgres")).await;
    for c in cases {
        let a = attack(&admin, c).await;
        arena.run_raw(a).await;
    }
    arena.finish();
}

#[tokio::test]
async fn identifiers_in_single_byte_cyrillic_encodings_are_decoded_as_the_server_does() {
    run_cases(&[
        Case {
            enc: "WIN1251",
            name: "сводка",
            quoted: false,
            how: How::Startup,
            read: Read::Simple,
        },
        Case {
            enc: "WIN1251",
            name: "Итоги",
            quoted: true,
            how: How::SetConfigExtended,
            read: Read::ExtendedInBlock,
        },
        Case {
            enc: "KOI8R",
            name: "сводка",
            quoted: true,
            how: How::Set,
            read: Read::ExtendedInBlock,
        },
        Case {
            enc: "KOI8R",
            name: "баланс",
            quoted: false,
            how: How::SetConfigSimple,
            read: Read::Extended,
        },
        Case {
            enc: "ISO_8859_5",
            name: "журнал",
            quoted: true,
            how: How::SetConfigSimple,
            read: Read::SimpleInBlock,
        },
        Case {
            enc: "ISO_8859_5",
            name: "журнал",
            quoted: true,
            how: How::Startup,
            read: Read::Extended,
        },
    ])
    .await;
}

#[tokio::test]
async fn identifiers_in_euc_jp_and_pipelined_encoding_changes_are_decoded_as_the_server_does() {
    run_cases(&[
        Case {
            enc: "EUC_JP",
            name: "レポート",
            quoted: true,
            how: How::Set,
            read: Read::Simple,
        },
        Case {
            enc: "EUC_JP",
            name: "集計",
            quoted: false,
            how: How::Startup,
            read: Read::SimpleInBlock,
        },
        Case {
            enc: "EUC_JP",
            name: "レポート",
            quoted: true,
            how: How::SetPipelined,
            read: Read::ExtendedInBlock,
        },
        Case {
            enc: "WIN1251",
            name: "отчёт",
            quoted: true,
            how: How::SetPipelined,
            read: Read::Extended,
        },
    ])
    .await;
}
