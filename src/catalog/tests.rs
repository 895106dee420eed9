//! Snapshots built from hand-made catalog rows, and facts resolved against
//! them.

use std::sync::Arc;

use super::baseline::Baseline;
use super::load::{
    Cast, ClassMember, Function, Named, Operator, Policy, Raw, Type, TypeCall, View,
    WriteExpression,
};
use super::*;
use crate::classify::{classify, Facts, Risks};

fn function(oid: u32, schema: &str, name: &str, volatility: char, nargs: i64) -> Function {
    Function {
        oid,
        schema: schema.into(),
        name: name.into(),
        volatility,
        nargs,
        nargdefaults: 0,
        extension: None,
        language: "plpgsql".into(),
        body: String::new(),
    }
}

fn named(schema: &str, name: &str) -> Named {
    Named {
        schema: schema.into(),
        name: name.into(),
    }
}

fn user_type(oid: u32, name: &str, relation: Option<&str>, contains: &[u32]) -> Type {
    Type {
        oid,
        schema: "app".into(),
        name: name.into(),
        relation: relation.map(|r| named("app", r)),
        contains: contains.to_vec(),
        extension: None,
        calls: Vec::new(),
    }
}

fn call(function: u32, schema: &str, name: &str, at_parse: bool) -> TypeCall {
    TypeCall {
        function,
        schema: schema.into(),
        name: name.into(),
        at_parse,
    }
}

/// A database with a little of every kind of user code.
pub(super) fn raw() -> Raw {
    let mut ext = function(20010, "public", "digest", 'i', 2);
    ext.extension = Some("pgcrypto".into());
    let mut ext_volatile = function(20011, "public", "gen_salt", 'v', 1);
    ext_volatile.extension = Some("pgcrypto".into());
    Raw {
        fingerprint: "fp".into(),
        temporary_fingerprint: String::new(),
        baseline_key: String::new(),
        major: 15,
        event_triggers: false,
        server_encoding: "UTF8".into(),
        baseline: super::baseline::Baseline::pristine_rows(15, &["pgcrypto"]),
        functions: vec![
            function(20001, "app", "grab", 'v', 1),
            function(20002, "app", "lower", 's', 1),
            function(20003, "app", "two_args", 'v', 2),
            function(20004, "app", "check_fn", 'i', 1),
            function(20005, "app", "eq_fn", 's', 2),
            function(20006, "app", "cast_fn", 's', 1),
            ext,
            ext_volatile,
        ],
        operators: vec![
            Operator {
                schema: "app".into(),
                name: "=".into(),
                function: 20005,
                function_schema: "app".into(),
                function_name: "eq_fn".into(),
            },
            // A user operator over a safe built-in function.
            Operator {
                schema: "app".into(),
                name: "===".into(),
                function: 65,
                function_schema: "pg_catalog".into(),
                function_name: "int4eq".into(),
            },
        ],
        views: vec![
            View {
                schema: "app".into(),
                name: "calls_grab".into(),
                definition: "SELECT app.grab(t.*) AS g FROM app.t".into(),
            },
            View {
                schema: "app".into(),
                name: "over_view".into(),
                definition: "SELECT g FROM app.calls_grab".into(),
            },
            View {
                schema: "app".into(),
                name: "harmless".into(),
                definition: "SELECT id, lower(v) FROM app.t".into(),
            },
            View {
                schema: "app".into(),
                name: "audited_view".into(),
                definition: "SELECT a FROM app.audited".into(),
            },
        ],
        foreign: vec![named("app", "remote")],
        policies: vec![Policy {
            schema: "app".into(),
            table: "guarded".into(),
            quoted: "app.guarded".into(),
            using: "app.grab(guarded.*) > 0".into(),
        }],
        checks: vec![(30001, "app.check_fn(VALUE)".into())],
        types: vec![
            user_type(30001, "checked", None, &[23]),
            user_type(30002, "_checked", None, &[30001]),
            user_type(30003, "holder", Some("holder"), &[30002]),
            user_type(30004, "mood", None, &[]),
            user_type(30005, "moods", Some("moods"), &[30004]),
        ],
        casts: vec![Cast {
            source: 30004,
            target: 30001,
            function: 20006,
            function_schema: "app".into(),
            function_name: "cast_fn".into(),
            extension: None,
        }],
        class_members: Vec::new(),
        triggers: vec![named("app", "audited")],
        write_expressions: vec![
            write_expression("with_default", "the expression of column d", "app.grab(1)"),
            write_expression(
                "t",
                "the expression of column id",
                "nextval('app.t_id_seq'::regclass)",
            ),
            write_expression("checked_t", "constraint c", "app.check_fn(a)"),
            write_expression("plain_checked", "constraint c", "(a > 0)"),
            write_expression("plain_checked", "index i", "lower(b), upper(b)"),
        ],
        rules: vec![(named("app", "ruled"), "r".into())],
        inherits: vec![(named("app", "parent"), named("app", "audited"))],
        cascades: vec![(named("app", "referenced"), named("app", "parent"))],
    }
}

fn write_expression(table: &str, what: &str, expression: &str) -> WriteExpression {
    WriteExpression {
        relation: named("app", table),
        what: what.into(),
        expression: expression.into(),
    }
}

pub(super) fn known() -> Known {
    Known::Snapshot(Arc::new(Snapshot::build(raw())))
}

pub(super) fn resolved(sql: &str) -> Arc<Facts> {
    resolve(&Arc::new(classify(sql)), &known(), false, &[])
}

fn assert_read(sql: &str) {
    let f = resolved(sql);
    assert!(f.is_read(), "{sql} should be a read: {f:?}");
}

fn assert_reaches(sql: &str, function: &str) {
    let f = resolved(sql);
    assert!(!f.is_read(), "{sql} should not be a read: {f:?}");
    let s = &f.statements[0];
    assert!(
        s.functions.iter().any(|x| x == function),
        "{sql}: {function} not among {:?}",
        s.functions
    );
    assert!(!s.user_code.is_empty(), "{sql}: no user code named");
}

#[test]
fn attribute_notation_reaches_one_argument_functions() {
    assert_reaches("SELECT x.grab FROM app.t x", "app.grab");
    assert_reaches("SELECT (x).grab FROM app.t x", "app.grab");
    assert_reaches("SELECT (x.v).grab FROM app.t x", "app.grab");
    // two_args cannot be called with one argument.
    assert_read("SELECT x.two_args FROM app.t x");
    assert_read("SELECT x.id, x.v FROM app.t x");
}

#[test]
fn overloads_of_built_in_names_are_not_the_built_in() {
    assert_reaches("SELECT lower(1)", "app.lower");
    assert_reaches("SELECT lower('A')", "app.lower");
    // Qualified with pg_catalog, it is the built-in.
    assert_read("SELECT pg_catalog.lower('A')");
    assert_read("SELECT upper('a')");
}

#[test]
fn operators_reach_their_functions_written_or_implied() {
    assert_reaches("SELECT 1 FROM app.t x WHERE x = 1", "app.eq_fn");
    assert_reaches(
        "SELECT CASE x.id WHEN 1 THEN 0 END FROM app.t x",
        "app.eq_fn",
    );
    assert_reaches("SELECT 1 FROM app.t a JOIN app.t b USING (id)", "app.eq_fn");
    assert_reaches("SELECT 1 WHERE 1 IN (SELECT 1)", "app.eq_fn");
    assert_reaches("SELECT 1 OPERATOR(app.=) 1", "app.eq_fn");
    // An operator over a safe built-in is safe; so are the others.
    assert_read("SELECT 1 === 1");
    assert_read("SELECT 1 < 2, 'a' || 'b'");
}

#[test]
fn views_policies_and_foreign_tables_run_their_code() {
    assert_reaches("SELECT * FROM app.calls_grab", "app.grab");
    assert_reaches("SELECT * FROM calls_grab", "app.grab");
    // However deep.
    assert_reaches("TABLE over_view", "app.grab");
    assert_reaches("SELECT * FROM app.guarded", "app.grab");
    assert_read("SELECT * FROM app.harmless");
    let f = resolved("SELECT * FROM remote");
    assert!(!f.is_read());
    assert!(f.risks().contains(Risks::USER_CODE));
}

#[test]
fn a_common_table_expression_hides_a_view_only_in_its_own_scope() {
    // Inside a non-recursive WITH query its own name is the relation.
    assert_reaches(
        "WITH calls_grab AS (SELECT * FROM calls_grab) SELECT * FROM calls_grab",
        "app.grab",
    );
    // A WITH in a subquery does not hide the outer query's relation.
    assert_reaches(
        "SELECT * FROM calls_grab, (WITH calls_grab AS (SELECT 1) SELECT * FROM calls_grab) s",
        "app.grab",
    );
    assert_read("WITH calls_grab AS (SELECT 1) SELECT * FROM calls_grab");
}

#[test]
fn later_grammar_forms_are_the_calls_postgresql_15_makes() {
    let mut r = raw();
    r.functions
        .push(function(20020, "app", "json_array", 'v', 1));
    r.functions
        .push(function(20021, "app", "json_object", 'v', 1));
    let k = Known::Snapshot(Arc::new(Snapshot::build(r)));
    for sql in [
        "SELECT json_array(1)",
        "SELECT json_object('{a,b}')",
        "SELECT json_object('a', 'b')",
    ] {
        let f = resolve(&Arc::new(classify(sql)), &k, false, &[]);
        assert!(!f.is_read(), "{sql}: {f:?}");
    }
    assert_read("SELECT json_object('{a,b}')");
}

#[test]
fn domain_checks_and_casts_run_when_values_are_made() {
    assert_reaches("SELECT 1::app.checked", "app.check_fn");
    assert_reaches("SELECT '{1}'::checked[]", "app.check_fn");
    // A table whose rows hold the type (through an array).
    assert_reaches("SELECT * FROM holder", "app.check_fn");
    // A cast's function.
    assert_reaches("SELECT 'calm'::mood", "app.cast_fn");
    assert_reaches("SELECT m::text FROM moods", "app.cast_fn");
    // A parameter declared of the domain's type.
    let f = resolve(&Arc::new(classify("SELECT $1")), &known(), false, &[30001]);
    assert!(!f.is_read(), "{f:?}");
    let f = resolve(&Arc::new(classify("SELECT $1")), &known(), false, &[23]);
    assert!(f.is_read(), "{f:?}");
}

#[test]
fn temporary_objects_are_found_by_their_alias_too() {
    let mut r = raw();
    r.views.push(View {
        schema: "pg_temp_3".into(),
        name: "tv".into(),
        definition: "SELECT app.grab(t.*) AS g FROM app.t".into(),
    });
    let k = Known::Snapshot(Arc::new(Snapshot::build(r)));
    for sql in [
        "SELECT * FROM pg_temp.tv",
        "SELECT * FROM tv",
        "SELECT * FROM pg_temp_3.tv",
    ] {
        let f = resolve(&Arc::new(classify(sql)), &k, false, &[]);
        assert!(!f.is_read(), "{sql}: {f:?}");
    }
}

#[test]
fn extensions_are_taken_at_their_word_only_when_stable() {
    assert_read("SELECT digest('a', 'sha256')");
    assert_read("SELECT public.digest('a', 'sha256')");
    let f = resolved("SELECT gen_salt('bf')");
    assert!(!f.is_read(), "{f:?}");
}

#[test]
fn without_a_snapshot_nothing_that_names_anything_is_a_read() {
    let unavailable = Known::Unavailable(Arc::from("refused"));
    for sql in [
        "SELECT * FROM t",
        "SELECT now()",
        "SELECT 1::int",
        "SELECT a.b FROM (SELECT 1 AS b) a",
    ] {
        let f = resolve(&Arc::new(classify(sql)), &unavailable, false, &[]);
        assert!(!f.is_read(), "{sql}: {f:?}");
        assert!(f.statements[0].user_code[0].contains("refused"));
    }
    for sql in ["SELECT 1", "SHOW search_path", ""] {
        let f = resolve(&Arc::new(classify(sql)), &unavailable, false, &[]);
        assert!(f.is_read(), "{sql}: {f:?}");
    }
    // Unsettled: the same, with a snapshot.
    let f = resolve(&Arc::new(classify("SELECT * FROM t")), &known(), true, &[]);
    assert!(!f.is_read());
    let f = resolve(&Arc::new(classify("SELECT 1")), &known(), true, &[]);
    assert!(f.is_read());
}

/// An application's database: user functions and a trigger, nothing an
/// index build could reach.
fn plain(event_triggers: bool) -> Known {
    let raw = Raw {
        major: 15,
        event_triggers,
        server_encoding: "UTF8".into(),
        baseline: super::baseline::Baseline::pristine_rows(15, &[]),
        functions: vec![function(20001, "app", "grab", 'v', 1)],
        triggers: vec![named("app", "audited")],
        ..Raw::default()
    };
    Known::Snapshot(Arc::new(Snapshot::build(raw)))
}

#[test]
fn a_type_that_calls_pl_code_behind_the_text_marks_what_holds_it() {
    // A range whose subtype_diff is a user's function (the planner calls it
    // for `&&` estimates, GiST for penalties), a table with such a column.
    let mut range = user_type(40001, "myr", None, &[23]);
    range.calls = vec![call(20001, "app", "grab", false)];
    let build = |range: Type| {
        let raw = Raw {
            major: 15,
            server_encoding: "UTF8".into(),
            baseline: super::baseline::Baseline::pristine_rows(15, &[]),
            functions: vec![function(20001, "app", "grab", 'v', 1)],
            types: vec![range, user_type(40002, "rt", Some("rt"), &[40001])],
            ..Raw::default()
        };
        Known::Snapshot(Arc::new(Snapshot::build(raw)))
    };
    let reads = |sql: &str, k: &Known| resolve(&Arc::new(classify(sql)), k, false, &[]).is_read();
    let k = build(range.clone());
    assert!(!reads(
        "SELECT count(*) FROM app.rt WHERE r && '[5,10]'",
        &k
    ));
    assert!(!reads("SELECT NULL::app.myr", &k));
    let index = resolve(
        &Arc::new(classify("CREATE INDEX ON app.rt USING gist (r)")),
        &k,
        false,
        &[],
    );
    assert!(may_change_catalog(&index, &k), "the build calls it");
    // A safe built-in (int4range's own subtype_diff) marks nothing.
    range.calls = vec![call(3922, "pg_catalog", "int4range_subdiff", false)];
    let k = build(range);
    assert!(reads("SELECT count(*) FROM app.rt WHERE r && '[5,10]'", &k));
}

#[test]
fn a_type_whose_code_runs_at_parse_marks_statements_code_at_parse() {
    // A base type whose typmod_in is a user's PL function: `bt(3)` runs it
    // in parse analysis, at a Parse, before any Bind.
    let mut base = user_type(40001, "bt", None, &[]);
    base.calls = vec![
        call(20001, "app", "grab", true),
        call(2006, "pg_catalog", "int4out", false),
    ];
    let raw = Raw {
        major: 15,
        server_encoding: "UTF8".into(),
        baseline: super::baseline::Baseline::pristine_rows(15, &[]),
        functions: vec![function(20001, "app", "grab", 'v', 1)],
        types: vec![
            base,
            user_type(40002, "t", Some("t"), &[40001]),
            user_type(40003, "_bt", None, &[40001]),
        ],
        ..Raw::default()
    };
    let k = Known::Snapshot(Arc::new(Snapshot::build(raw)));
    let risks = |sql: &str| resolve(&Arc::new(classify(sql)), &k, false, &[]).risks();
    for sql in [
        "SELECT NULL::app.bt(3)",
        "SELECT NULL::bt[]",
        "SELECT * FROM app.t WHERE c = '1'",
        "INSERT INTO t VALUES ('1')",
    ] {
        let r = risks(sql);
        assert!(r.contains(Risks::CODE_AT_PARSE), "{sql}: {:?}", r);
        assert!(r.contains(Risks::UNKNOWN_FUNCTION), "{sql}");
    }
    assert!(!risks("SELECT 1::int4").contains(Risks::CODE_AT_PARSE));
    // A type name given as text runs its typmod_in too.
    let r = risks("SELECT 'app.bt(3)'::regtype");
    assert!(r.contains(Risks::CODE_AT_PARSE), "{r:?}");
    for sql in [
        "SELECT to_regtype('app.bt(3)')",
        "SELECT pg_catalog.to_regtype('app.' || 'bt(3)')",
        "SELECT has_type_privilege('app.bt(3)', 'USAGE')",
    ] {
        assert!(risks(sql).contains(Risks::UNKNOWN_FUNCTION), "{sql}");
    }
    // Every table's row type and array call PostgreSQL's container I/O
    // (record_in calls each column type's input): that marks nothing.
    let mut row = user_type(40004, "plain", Some("plain"), &[23]);
    row.calls = ["record_in", "record_out", "record_recv", "record_send"]
        .iter()
        .enumerate()
        .map(|(i, n)| call(2290 + i as u32, "pg_catalog", n, n.ends_with("_in")))
        .collect();
    let mut array = user_type(40005, "_plain", None, &[40004]);
    array.calls = [
        "array_in",
        "array_out",
        "array_subscript_handler",
        "array_typanalyze",
    ]
    .iter()
    .enumerate()
    .map(|(i, n)| call(750 + i as u32, "pg_catalog", n, true))
    .collect();
    let raw = Raw {
        major: 15,
        server_encoding: "UTF8".into(),
        baseline: super::baseline::Baseline::pristine_rows(15, &[]),
        types: vec![row, array],
        ..Raw::default()
    };
    let plain = Known::Snapshot(Arc::new(Snapshot::build(raw)));
    for sql in [
        "SELECT * FROM app.plain WHERE c = '1'",
        "SELECT NULL::app.plain, '{}'::app._plain",
        "SELECT to_regtype('int4'), 'int4'::regtype",
    ] {
        assert!(
            resolve(&Arc::new(classify(sql)), &plain, false, &[]).is_read(),
            "{sql}"
        );
    }
    // Code the type calls only when it plans or runs one is no code at parse.
    let mut late = user_type(40001, "bt", None, &[]);
    late.calls = vec![call(20001, "app", "grab", false)];
    let raw = Raw {
        major: 15,
        server_encoding: "UTF8".into(),
        baseline: super::baseline::Baseline::pristine_rows(15, &[]),
        functions: vec![function(20001, "app", "grab", 'v', 1)],
        types: vec![late],
        ..Raw::default()
    };
    let k = Known::Snapshot(Arc::new(Snapshot::build(raw)));
    let r = resolve(&Arc::new(classify("SELECT NULL::app.bt")), &k, false, &[]).risks();
    assert!(r.contains(Risks::UNKNOWN_FUNCTION) && !r.contains(Risks::CODE_AT_PARSE));
}

#[test]
fn an_index_build_of_built_ins_alone_is_no_catalog_change() {
    let changes = |sql: &str, k: &Known| {
        may_change_catalog(&resolve(&Arc::new(classify(sql)), k, false, &[]), k)
    };
    let k = plain(false);
    for sql in [
        "CREATE INDEX ON app.t (v)",
        "CREATE INDEX CONCURRENTLY i ON app.t USING gin (to_tsvector('simple', v))",
        "CREATE UNIQUE INDEX i ON t (lower(v)) WHERE id > 0",
    ] {
        assert!(!changes(sql, &k), "{sql}");
    }
    for sql in [
        // User code in the expression or predicate, a method of a user's.
        "CREATE INDEX ON app.t (app.grab(v))",
        "CREATE INDEX ON app.t (v) WHERE grab(v) > 0",
        "CREATE INDEX ON app.t USING bloom (v)",
        // Other DDL.
        "ALTER TABLE app.t ADD COLUMN x int",
        "REINDEX TABLE app.t",
    ] {
        assert!(changes(sql, &k), "{sql}");
    }
    // An enabled event trigger runs at every DDL.
    assert!(changes("CREATE INDEX ON app.t (v)", &plain(true)));
    // Operator-class members or types that are user code may run in the
    // build for the column's type (the rich test database has both).
    assert!(changes("CREATE INDEX ON app.t (v)", &known()));
    assert!(changes(
        "CREATE INDEX ON app.t (v)",
        &Known::Unavailable("x".into())
    ));
}

#[test]
fn only_what_may_change_the_catalog_asks_for_a_new_snapshot() {
    let k = known();
    let changes = |sql: &str| may_change_catalog(&resolved(sql), &k);
    assert!(changes(
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'"
    ));
    assert!(changes("CREATE VIEW v AS SELECT 1"));
    assert!(changes("DO $$ BEGIN END $$"));
    assert!(changes("SELECT app.grab(t) FROM app.t"));
    assert!(changes("INSERT INTO audited VALUES (1)"));
    assert!(changes("UPDATE app.audited SET a = 1 WHERE id = 1"));
    assert!(!changes("INSERT INTO app.t VALUES (1)"));
    assert!(!changes("UPDATE t SET v = 'x' WHERE id > 1"));
    assert!(!changes("SELECT * FROM app.t"));
    assert!(changes("COMMIT PREPARED 'x'"));
    assert!(changes("SELECT * INTO copied FROM app.t"));
    assert!(!changes("BEGIN"));
    assert!(!changes("SET work_mem = '64MB'"));
    // Index builds and ANALYZE run index expressions, which may be user
    // code; a lock runs nothing.
    assert!(changes("VACUUM app.t"));
    assert!(changes("ANALYZE app.t"));
    assert!(changes("REINDEX TABLE app.t"));
    assert!(changes("CLUSTER app.t USING i"));
    assert!(!changes("LOCK TABLE app.t IN ACCESS SHARE MODE"));
    assert!(!changes("CHECKPOINT"));
    // A superuser's write to a system catalog changes code in place.
    assert!(changes(
        "UPDATE pg_proc SET prosrc = 'x' WHERE proname = 'f'"
    ));
    assert!(changes("UPDATE pg_catalog.pg_proc SET provolatile = 'i'"));
    assert!(changes(
        "INSERT INTO pg_catalog.pg_cast SELECT * FROM app.t"
    ));
    assert!(changes(
        "DELETE FROM \"pg_catalog\".\"pg_rewrite\" WHERE false"
    ));
    assert!(changes("UPDATE PG_CATALOG.PG_TYPE SET typinput = 0"));
    // Built-ins with side effects change no code, unless they run SQL.
    assert!(!changes("SELECT pg_sleep(3)"));
    assert!(!changes("SELECT pg_catalog.pg_sleep(3)"));
    assert!(!changes("SELECT nextval('s'), pg_advisory_lock(1)"));
    assert!(!changes("SELECT lo_unlink(42)"));
    assert!(changes("SELECT dblink_exec('c', 'DROP TABLE t')"));
    assert!(changes(
        "SELECT pg_sleep(1), dblink_exec('c', 'DROP TABLE t')"
    ));
    assert!(changes("SELECT table_to_xml('app.v', true, false, '')"));
    assert!(changes("SELECT query_to_xml('SELECT 1', true, false, '')"));
    assert!(changes("SELECT app.pg_sleep(1)"));
    assert!(changes("SELECT pg_sleep(1), app.grab(t) FROM app.t"));
    // Every DDL, even an index or a privilege: event triggers fire on them.
    assert!(changes("CREATE INDEX i ON app.t (id)"));
    assert!(changes(
        "CREATE INDEX CONCURRENTLY i ON t (abs(id)) WHERE id > 0"
    ));
    assert!(changes("GRANT SELECT ON app.t TO bob"));
    assert!(changes("REVOKE SELECT ON app.t FROM bob"));
    assert!(changes("DROP INDEX i"));
    assert!(changes("CREATE TABLE n (a int)"));
}

#[test]
fn facts_without_user_code_keep_their_allocation() {
    let facts = Arc::new(classify("SELECT id FROM app.t WHERE id = 1"));
    let k = Known::Snapshot(Arc::new(Snapshot::build(pristine())));
    assert!(Arc::ptr_eq(&facts, &resolve(&facts, &k, false, &[])));
    let with_code = known();
    let plain = Arc::new(classify("SELECT id FROM app.t WHERE id > 1"));
    assert!(Arc::ptr_eq(
        &plain,
        &resolve(&plain, &with_code, false, &[])
    ));
}

/// A database with nothing but what PostgreSQL and `pgcrypto` install.
fn pristine() -> Raw {
    Raw {
        major: 15,
        server_encoding: "UTF8".into(),
        baseline: Baseline::pristine_rows(15, &["pgcrypto"]),
        ..Raw::default()
    }
}

fn read_in(raw: Raw, sql: &str) -> bool {
    let k = Known::Snapshot(Arc::new(Snapshot::build(raw)));
    let f = resolve(&Arc::new(classify(sql)), &k, false, &[]);
    f.statements.iter().all(|s| s.is_read())
}

#[test]
fn a_catalog_without_a_baseline_or_a_changed_built_in_proves_nothing() {
    assert!(read_in(pristine(), "SELECT lpad('x', 3)"));
    assert!(
        !read_in(Raw::default(), "SELECT lpad('x', 3)"),
        "no baseline for version 0"
    );
    let mut changed = pristine();
    for row in changed.baseline.iter_mut().filter(|r| r[1] == "proc") {
        row[3] = "replaced".into();
    }
    assert!(!read_in(changed.clone(), "SELECT lpad('x', 3)"));
    assert!(!read_in(changed.clone(), "SELECT * FROM t"));
    assert!(read_in(changed, "SELECT 1"), "names nothing");
}

#[test]
fn a_cast_or_operator_class_over_built_in_types_reaches_every_statement() {
    let mut raw = pristine();
    raw.functions
        .push(function(20001, "public", "evil", 'i', 1));
    raw.casts.push(Cast {
        source: 23,
        target: 25,
        function: 20001,
        function_schema: "public".into(),
        function_name: "evil".into(),
        extension: None,
    });
    assert!(!read_in(raw.clone(), "SELECT 'n=' || 42"));
    assert!(!read_in(raw.clone(), "SELECT id FROM t ORDER BY id"));
    let mut raw = pristine();
    raw.functions.push(function(20001, "public", "cmp", 'i', 2));
    raw.class_members.push(ClassMember {
        left: 114,
        right: 114,
        function: 20001,
        function_schema: "public".into(),
        function_name: "cmp".into(),
        extension: None,
        family: "btree json_ops".into(),
    });
    assert!(!read_in(raw.clone(), "SELECT DISTINCT j FROM t"));
    // Building an index runs the opclass's support functions: a user one
    // may reach dblink_exec, so the build counts as a change of the
    // catalog, as any DDL does.
    let k = Known::Snapshot(Arc::new(Snapshot::build(raw.clone())));
    for sql in [
        "CREATE INDEX i ON t (j)",
        "CREATE INDEX i ON t (j public.my_ops)",
    ] {
        let f = resolve(&Arc::new(classify(sql)), &k, false, &[]);
        assert!(may_change_catalog(&f, &k), "{sql}: {f:?}");
    }
    // A member over built-in functions is harmless.
    raw.class_members[0].function = 351;
    raw.class_members[0].function_schema = "pg_catalog".into();
    raw.class_members[0].function_name = "btint4cmp".into();
    assert!(read_in(raw, "SELECT DISTINCT j FROM t"));
}

#[test]
fn extension_functions_are_trusted_only_as_the_extension_installs_them() {
    let mut raw = pristine();
    let mut f = function(20010, "public", "digest", 'i', 2);
    f.extension = Some("pgcrypto".into());
    raw.functions.push(f);
    assert!(read_in(raw.clone(), "SELECT digest('x', 'sha1')"));
    for row in raw.baseline.iter_mut().filter(|r| r[1] == "pgcrypto") {
        row[3] = "member added".into();
    }
    assert!(!read_in(raw.clone(), "SELECT digest('x', 'sha1')"));
    // A function made a member of an extension no baseline knows.
    let mut raw = pristine();
    let mut f = function(20011, "public", "similarity", 's', 2);
    f.extension = Some("unknown_ext".into());
    raw.functions.push(f);
    assert!(!read_in(raw, "SELECT similarity('a', 'b')"));
}

#[test]
fn sql_given_as_text_is_never_a_read() {
    let mut raw = pristine();
    raw.baseline
        .extend(Baseline::pristine_rows(15, &["tablefunc"]));
    let mut f = function(20012, "public", "crosstab", 's', 1);
    f.extension = Some("tablefunc".into());
    raw.functions.push(f);
    assert!(!read_in(
        raw,
        "SELECT * FROM crosstab('SELECT 1') AS t(a int)"
    ));
}

#[test]
fn bodies_found_by_the_callers_path_are_hijacked_by_names_they_use() {
    let mut raw = pristine();
    raw.baseline
        .extend(Baseline::pristine_rows(15, &["cube", "earthdistance"]));
    let mut sec = function(20020, "public", "sec_to_gc", 'i', 1);
    sec.extension = Some("earthdistance".into());
    sec.language = "sql".into();
    sec.body =
        "SELECT CASE WHEN $1 < 0 THEN 0::float8 ELSE 2*earth()*asin($1/(2*earth())) END".into();
    let mut earth = function(20021, "public", "earth", 'i', 0);
    earth.extension = Some("earthdistance".into());
    raw.functions.push(sec);
    raw.functions.push(earth);
    assert!(read_in(raw.clone(), "SELECT sec_to_gc(1000)"));
    // A user's earth() in any schema.
    raw.functions
        .push(function(20022, "postgres", "earth", 'i', 0));
    assert!(!read_in(raw.clone(), "SELECT sec_to_gc(1000)"));
    // A domain named so, whose CHECK need not even run code.
    raw.functions.pop();
    raw.types.push(user_type(30010, "earth", None, &[]));
    assert!(!read_in(raw, "SELECT sec_to_gc(1000)"));
}

#[test]
fn a_call_that_is_a_cast_to_a_type_of_that_name_runs_its_check() {
    let mut raw = pristine();
    raw.functions
        .push(function(20001, "app", "check_fn", 'v', 1));
    raw.types.push(user_type(30001, "lower", None, &[25]));
    raw.checks.push((30001, "app.check_fn(VALUE)".into()));
    assert!(!read_in(raw.clone(), "SELECT lower('ABC')"));
    assert!(read_in(raw, "SELECT upper('ABC')"));
}

#[test]
fn range_constructors_are_postgresql_own() {
    let mut raw = pristine();
    let mut f = function(20030, "public", "floatrange", 'i', 2);
    f.language = "internal".into();
    f.body = "range_constructor2".into();
    raw.functions.push(f);
    assert!(read_in(raw.clone(), "SELECT floatrange(1, 2)"));
    raw.functions[0].body = "pg_terminate_backend".into();
    assert!(!read_in(raw, "SELECT floatrange(1, 2)"));
}
