//! Client compatibility: psql as a subprocess through the real proxy, its
//! output compared with the same command run directly against the cluster.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::*;

const DB: &str = "airlock_test";

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(unique("airlock-psql"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the same psql arguments through the proxy and directly; returns
/// both outputs.
fn both(proxy: &TestProxy, args: &[&str]) -> (Output, Output) {
    (
        psql(proxy.port(), "postgres", DB, args),
        psql(pg().port, "postgres", DB, args),
    )
}

/// Runs `args` both ways, asserts both succeed with identical output, and
/// returns that output.
fn same_output(proxy: &TestProxy, args: &[&str]) -> String {
    let (via, direct) = both(proxy, args);
    let via = stdout_ok(&via);
    let direct = stdout_ok(&direct);
    assert_eq!(via, direct, "psql {args:?}: proxy and direct differ");
    via
}

/// A schema of its own with one described table, so that `\d` and `\dt`
/// list only this test's relations.
fn make_schema(proxy: &TestProxy) -> (String, String) {
    let schema = unique("psql_schema");
    let table = "accounts";
    stdout_ok(&psql(
        proxy.port(),
        "postgres",
        DB,
        &[
            "-c",
            &format!(
                "create schema {schema};
                 create table {schema}.{table} (
                     id bigint generated always as identity primary key,
                     owner text not null,
                     balance numeric(12, 2) default 0 check (balance >= 0),
                     opened timestamptz default now()
                 );
                 create index {table}_owner_idx on {schema}.{table} (owner);
                 comment on table {schema}.{table} is 'money, held for review';
                 create view {schema}.rich as select * from {schema}.{table} where balance > 1000;
                 create sequence {schema}.ticket_seq;"
            ),
        ],
    ));
    (schema, table.to_string())
}

#[test]
fn describe_commands_match_direct() {
    let proxy = TestProxy::start();
    let (schema, table) = make_schema(&proxy);
    let path = format!("set search_path = {schema}");

    let d = same_output(&proxy, &["-c", &path, "-c", "\\d"]);
    for want in [
        "accounts",
        "accounts_id_seq",
        "rich",
        "ticket_seq",
        "view",
        "sequence",
    ] {
        assert!(d.contains(want), "\\d lacks {want}:\n{d}");
    }

    let dt = same_output(&proxy, &["-c", &path, "-c", "\\dt"]);
    assert!(dt.contains(&format!("{schema} | accounts | table")), "{dt}");
    assert!(!dt.contains("rich"), "\\dt lists only tables:\n{dt}");

    let dplus = same_output(&proxy, &["-c", &path, "-c", &format!("\\d+ {table}")]);
    for want in [
        "Table \"",
        "bigint",
        "generated always as identity",
        "numeric(12,2)",
        "\"accounts_pkey\" PRIMARY KEY, btree (id)",
        "\"accounts_owner_idx\" btree (owner)",
        "CHECK (balance >= 0::numeric)",
        "Access method: heap",
    ] {
        assert!(dplus.contains(want), "\\d+ lacks {want}:\n{dplus}");
    }

    let l = same_output(&proxy, &["-c", "\\l"]);
    for want in ["airlock_test", "postgres", "template0", "template1"] {
        assert!(l.contains(want), "\\l lacks {want}:\n{l}");
    }

    // The catalog queries behind \d+ in one session, several times.
    let again = same_output(
        &proxy,
        &[
            "-c",
            &path,
            "-c",
            "\\d+ accounts",
            "-c",
            "\\d+ accounts",
            "-c",
            "\\dv",
        ],
    );
    assert_eq!(again.matches("Access method: heap").count(), 2, "{again}");
    assert!(again.contains("rich"), "{again}");
}

#[test]
fn copy_to_and_from_a_file() {
    let proxy = TestProxy::start();
    let dir = TempDir::new();
    let (src, dst) = (unique("psql_copy_src"), unique("psql_copy_dst"));
    stdout_ok(&psql(
        proxy.port(),
        "postgres",
        DB,
        &[
            "-c",
            &format!(
                "create table {src} (id int primary key, name text, note text);
                 insert into {src}
                     select g, 'name ' || g || E'\\t✓', case when g % 5 = 0 then null else repeat('n', g % 37) end
                     from generate_series(1, 3000) g;
                 create table {dst} (like {src} including all);"
            ),
        ],
    ));

    let (via_file, direct_file) = (dir.file("via.tsv"), dir.file("direct.tsv"));
    let copy_out = |port: u16, file: &str| {
        stdout_ok(&psql(
            port,
            "postgres",
            DB,
            &[
                "-c",
                &format!("\\copy (select * from {src} order by id) to '{file}'"),
            ],
        ))
    };
    assert_eq!(copy_out(proxy.port(), &via_file), "COPY 3000\n");
    assert_eq!(copy_out(pg().port, &direct_file), "COPY 3000\n");
    let via = std::fs::read(&via_file).unwrap();
    assert_eq!(
        via,
        std::fs::read(&direct_file).unwrap(),
        "\\copy to differs"
    );
    assert_eq!(via.iter().filter(|&&b| b == b'\n').count(), 3000);

    let out = stdout_ok(&psql(
        proxy.port(),
        "postgres",
        DB,
        &["-c", &format!("\\copy {dst} from '{via_file}'")],
    ));
    assert_eq!(out, "COPY 3000\n");
    let digest = |t: &str| {
        stdout_ok(&psql(
            pg().port,
            "postgres",
            DB,
            &[
                "-At",
                "-c",
                &format!("select count(*), md5(string_agg(t::text, ',' order by id)) from {t} t"),
            ],
        ))
    };
    assert_eq!(digest(&dst), digest(&src), "rows changed on the way");

    // A \copy from bad data fails with PostgreSQL's error and loads nothing.
    std::fs::write(dir.file("bad.tsv"), "1\tok\t\\N\nx\tbad\t\\N\n").unwrap();
    let bad = psql(
        proxy.port(),
        "postgres",
        DB,
        &[
            "-c",
            &format!("\\copy {dst} from '{}'", dir.file("bad.tsv")),
        ],
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("invalid input syntax for type integer: \"x\""),
        "{stderr}"
    );
    assert_eq!(digest(&dst), digest(&src));
}

#[test]
fn multi_statement_command() {
    let proxy = TestProxy::start();
    let run = |port: u16| {
        let t = unique("psql_multi");
        stdout_ok(&psql(
            port,
            "postgres",
            DB,
            &[
                "-c",
                &format!(
                    "create table {t} (a int, b text); insert into {t} values (1, 'x'), (2, 'y'), (3, null); select a, b, a * 10 as c from {t} order by a desc"
                ),
            ],
        ))
    };
    let via = run(proxy.port());
    assert_eq!(via, run(pg().port), "proxy and direct differ");
    // psql 15 prints the result of every statement of the message.
    assert_eq!(
        via,
        "CREATE TABLE\nINSERT 0 3\n a | b | c  \n---+---+----\n 3 |   | 30\n 2 | y | 20\n 1 | x | 10\n(3 rows)\n\n"
    );

    // One Query message is one implicit transaction: a failure undoes it all.
    let t = unique("psql_multi_fail");
    let fail = |port: u16| {
        psql(
            port,
            "postgres",
            DB,
            &[
                "-c",
                &format!("create table {t} (a int); insert into {t} values (1); select 1/0"),
            ],
        )
    };
    let (via, direct) = (fail(proxy.port()), fail(pg().port));
    assert_eq!(via.status.code(), Some(1), "{via:?}");
    assert_eq!(via.status.code(), direct.status.code());
    assert_eq!(via.stderr, direct.stderr);
    assert_eq!(
        String::from_utf8_lossy(&via.stderr),
        "ERROR:  division by zero\n"
    );
    let exists = stdout_ok(&psql(
        proxy.port(),
        "postgres",
        DB,
        &["-At", "-c", &format!("select to_regclass('{t}') is null")],
    ));
    assert_eq!(exists, "t\n", "the failed message's create was rolled back");
}

const SCRIPT: &str = r#"\set ON_ERROR_STOP 1
create table :t (id int primary key, label text, amount numeric);
insert into :t values (1, 'one', 1.5), (2, 'two', null), (3, 'three', 3.25);
select count(*) as n, sum(amount) as total from :t \gset
\echo rows :n total :total
begin;
update :t set amount = coalesce(amount, 0) + 1;
savepoint s;
delete from :t where id = 3;
rollback to savepoint s;
commit;
do $$ begin raise notice 'from the script'; end $$;
prepare pick(int) as select label, amount from :t where id = $1;
execute pick(2);
deallocate pick;
\x on
select * from :t order by id;
\x off
copy (select id, label from :t order by id) to stdout with (format csv, header);
select 'tab' || chr(9) || 'end' as odd, null::int as nothing, 'ünï' as uni;
"#;

#[test]
fn script_file_matches_direct() {
    let proxy = TestProxy::start();
    let dir = TempDir::new();
    let script = dir.file("script.sql");
    std::fs::write(&script, SCRIPT).unwrap();
    let run = |port: u16| {
        let t = unique("psql_script");
        psql(
            port,
            "postgres",
            DB,
            &["-v", &format!("t={t}"), "-f", &script],
        )
    };
    let (via, direct) = (run(proxy.port()), run(pg().port));
    let out = stdout_ok(&via);
    assert_eq!(out, stdout_ok(&direct), "stdout differs");
    assert_eq!(via.stderr, direct.stderr, "stderr differs");
    for want in [
        "rows 3 total 4.75",
        "UPDATE 3",
        "DELETE 1",
        "ROLLBACK",
        "COMMIT",
        " two   |      1\n",
        "-[ RECORD 3 ]-\nid     | 3\nlabel  | three\namount | 4.25\n",
        "id,label\n1,one\n2,two\n3,three\n",
        "ünï",
    ] {
        assert!(out.contains(want), "script output lacks {want:?}:\n{out}");
    }
    assert!(
        String::from_utf8_lossy(&via.stderr).contains("NOTICE:  from the script"),
        "{via:?}"
    );

    // With an error the script stops where it stood, with the same message.
    std::fs::write(&script, "select 1;\nselect 1/0;\nselect 3;\n").unwrap();
    let (via, direct) = (run(proxy.port()), run(pg().port));
    assert_eq!(via.status.code(), Some(3), "ON_ERROR_STOP exit code");
    assert_eq!(via.status.code(), direct.status.code());
    assert_eq!(via.stdout, direct.stdout);
    assert_eq!(via.stderr, direct.stderr);
    assert!(String::from_utf8_lossy(&via.stderr).contains("script.sql:2: ERROR:  division by zero"));
}
