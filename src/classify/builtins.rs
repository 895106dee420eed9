//! What the classifier knows about PostgreSQL's built-in functions and
//! operators.
//!
//! A function call is acceptable in a read only if every overload of that
//! name in `pg_catalog` is marked immutable or stable (the list in
//! `builtin_functions.txt`, generated from the catalog by
//! `scripts/gen-builtins.sh`), and the call is unqualified or qualified with
//! `pg_catalog`. For built-ins the volatility markings are the server's own.
//! A few stable built-ins run code chosen at run time (a query in a string, a
//! relation or a type named by a value) and are not safe whatever their
//! marking. Functions of the same name that users created (an overload
//! `lower(int)` in another schema) are the upstream catalog's business: see
//! `crate::catalog`.

use std::collections::HashSet;
use std::sync::OnceLock;

static FUNCTIONS_TXT: &str = include_str!("builtin_functions.txt");
static VOLATILE_UNARY_TXT: &str = include_str!("builtin_volatile_unary.txt");

fn lines(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn safe_functions() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| lines(FUNCTIONS_TXT))
}

/// Built-ins with a volatile overload callable with one argument.
fn volatile_unary() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| lines(VOLATILE_UNARY_TXT))
}

/// Built-ins marked stable or immutable that run code chosen at run time,
/// which the statement's text does not show: a query given as a string, every
/// relation of a table, schema or database (views and row-level security
/// policies run their code), or a type named by its OID (a domain's CHECK
/// constraint runs). They are never safe.
const RUN_CHOSEN_CODE: &[&str] = &[
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "table_to_xmlschema",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "schema_to_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "database_to_xmlschema",
    "domain_in",
    "domain_recv",
    "record_in",
    "record_recv",
    "array_in",
    "array_recv",
    "range_in",
    "range_recv",
    "multirange_in",
    "multirange_recv",
];

/// Whether the built-in `name` is the input function of a type that
/// contains others (a domain, a composite, an array, a range), which calls
/// the contained types' own: as a type's input it runs nothing of its own.
pub fn is_container_input(name: &str) -> bool {
    matches!(
        name,
        "domain_in"
            | "domain_recv"
            | "record_in"
            | "record_recv"
            | "array_in"
            | "array_recv"
            | "range_in"
            | "range_recv"
            | "multirange_in"
            | "multirange_recv"
    )
}

/// Built-ins PostgreSQL marks volatile only because their result may change
/// from call to call, reviewed one by one as reading without effect.
const VOLATILE_READS: &[&str] = &[
    "clock_timestamp",
    "timeofday",
    "random",
    "gen_random_uuid",
    "currval",
    "lastval",
    "pg_blocking_pids",
    "pg_safe_snapshot_blocking_pids",
    "pg_collation_actual_version",
    "pg_database_collation_actual_version",
    "pg_current_wal_lsn",
    "pg_current_wal_flush_lsn",
    "pg_current_wal_insert_lsn",
    "pg_last_wal_receive_lsn",
    "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp",
    "pg_last_committed_xact",
    "pg_is_in_recovery",
    "pg_is_wal_replay_paused",
    "pg_get_wal_replay_pause_state",
    "pg_jit_available",
    "pg_lock_status",
    "pg_notification_queue_usage",
    "pg_partition_ancestors",
    "pg_partition_tree",
    "pg_prepared_xact",
    "pg_sequence_last_value",
    "pg_relation_size",
    "pg_table_size",
    "pg_indexes_size",
    "pg_total_relation_size",
    "pg_database_size",
    "pg_tablespace_size",
    "pg_xact_commit_timestamp",
    "pg_xact_status",
    "txid_status",
    "pg_control_checkpoint",
    "pg_control_init",
    "pg_control_recovery",
    "pg_control_system",
    // Names the transaction's snapshot for others to share (pg_dump -j);
    // allowed in read-only transactions.
    "pg_export_snapshot",
    // Release advisory locks the session itself holds (which it could take
    // only with approval); connection pools call them on release.
    "pg_advisory_unlock",
    "pg_advisory_unlock_shared",
    "pg_advisory_unlock_all",
];

/// Functions of contrib extensions PostgreSQL marks volatile only because
/// their results change from call to call, reviewed one by one as reading
/// without effect. They count only as members of an installed extension
/// (see `crate::catalog`), never by name alone.
const EXTENSION_VOLATILE_READS: &[&str] = &[
    "pg_stat_statements",
    "pg_stat_statements_info",
    "pg_buffercache_pages",
    "pgstattuple",
    "pgstattuple_approx",
    "pgstatindex",
    "pgstatginindex",
    "pgstathashindex",
    "pg_relpages",
    "pgrowlocks",
    "pg_freespace",
];

/// Functions of contrib extensions that run SQL given to them as text, or
/// pasted from their arguments into SQL: tablefunc's `crosstab` and
/// `connectby`, xml2's `xpath_table`, dblink's and postgres_fdw's (in
/// another session, past the read-only backstop). Whatever their marking
/// (crosstab is STABLE), the SQL they run may call anything; they are never
/// reads.
const RUN_SQL_TEXT: &[&str] = &[
    "crosstab",
    "crosstab2",
    "crosstab3",
    "crosstab4",
    "crosstab_hash",
    "connectby",
    "xpath_table",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "ts_stat",
];

/// Whether an extension's function `name` runs SQL given as text.
pub fn runs_sql_text(name: &str) -> bool {
    RUN_SQL_TEXT.contains(&name) || name.starts_with("dblink") || name.starts_with("postgres_fdw")
}

/// Whether an extension's volatile function `name` was reviewed as a read.
pub fn is_reviewed_extension_read(name: &str) -> bool {
    EXTENSION_VOLATILE_READS.contains(&name)
}

/// The helpers PostgreSQL ships in `information_schema`, which drivers call
/// schema-qualified in their catalog queries (pgjdbc's getPrimaryKeys,
/// getIndexInfo and getBestRowIdentifier call `_pg_expandarray`). Each is
/// a SQL function marked immutable (`_pg_index_position`: stable), not
/// security definer, whose body only calls pg_catalog built-ins; PostgreSQL
/// refuses anything but SELECT in a non-volatile SQL function. The schema
/// belongs to the bootstrap superuser and grants only USAGE, so no one else
/// can add an overload there. Only the qualified call counts: the schema is
/// not on the search path, so an unqualified `_pg_expandarray` would be
/// someone else's function.
const INFORMATION_SCHEMA_READS: &[&str] = &[
    "_pg_char_max_length",
    "_pg_char_octet_length",
    "_pg_datetime_precision",
    "_pg_expandarray",
    "_pg_index_position",
    "_pg_interval_type",
    "_pg_numeric_precision",
    "_pg_numeric_precision_radix",
    "_pg_numeric_scale",
    "_pg_truetypid",
    "_pg_truetypmod",
];

/// Whether a call of `name` (lower-case, as parsed) qualified by `schema`
/// is known to have no side effects.
pub fn is_safe_function(schema: Option<&str>, name: &str) -> bool {
    if schema == Some("information_schema") {
        return INFORMATION_SCHEMA_READS.contains(&name);
    }
    matches!(schema, None | Some("pg_catalog"))
        && !RUN_CHOSEN_CODE.contains(&name)
        && !has_side_effects(name)
        && (safe_functions().contains(name)
            || VOLATILE_READS.contains(&name)
            // The statistics views' accessors: read-only counters.
            || name.starts_with("pg_stat_get_"))
}

/// Whether `x.name` may call the built-in `name(x)` (attribute notation)
/// with an effect: a volatile built-in callable with one argument, such as
/// `('s'::regclass).nextval` or `(t.id).pg_advisory_lock`.
pub fn is_unsafe_by_attribute(name: &str) -> bool {
    (volatile_unary().contains(name) || has_side_effects(name) || RUN_CHOSEN_CODE.contains(&name))
        && !is_safe_function(None, name)
}

/// Functions known to act on the world: named as such in the facts (they
/// are never reads either way).
pub fn has_side_effects(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "nextval",
        "setval",
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_switch_wal",
        "pg_promote",
        "pg_notify",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "pg_file_write",
        "pg_logical_emit_message",
        "txid_current",
        "pg_current_xact_id",
        "pg_import_system_collations",
        "query_to_xml",
        "query_to_xml_and_xmlschema",
        "table_to_xml",
        "cursor_to_xml",
    ];
    const PREFIXES: &[&str] = &[
        "lo_",
        "dblink",
        "pg_advisory",
        "pg_try_advisory",
        "pg_create_",
        "pg_drop_",
        "pg_replication_",
        "pg_stat_reset",
        "pg_backup_",
        "pg_wal_replay_",
    ];
    (EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p)))
        && !name.starts_with("pg_advisory_unlock")
}

/// Built-in operator names (every one of them backed by a non-volatile
/// function in PostgreSQL's catalog), and the keyword forms the parser uses
/// for BETWEEN.
pub fn is_builtin_operator(schema: Option<&str>, name: &str) -> bool {
    const OPS: &[&str] = &[
        "!!",
        "!~",
        "!~*",
        "!~~",
        "!~~*",
        "#",
        "##",
        "#-",
        "#>",
        "#>>",
        "%",
        "&",
        "&&",
        "&<",
        "&<|",
        "&>",
        "*",
        "*<",
        "*<=",
        "*<>",
        "*=",
        "*>",
        "*>=",
        "+",
        "-",
        "->",
        "->>",
        "-|-",
        "/",
        "<",
        "<->",
        "<<",
        "<<=",
        "<<|",
        "<=",
        "<>",
        "<@",
        "<^",
        "=",
        ">",
        ">=",
        ">>",
        ">>=",
        ">^",
        "?",
        "?#",
        "?&",
        "?-",
        "?-|",
        "?|",
        "?||",
        "@",
        "@-@",
        "@>",
        "@?",
        "@@",
        "@@@",
        "^",
        "^@",
        "|",
        "|&>",
        "|/",
        "|>>",
        "||",
        "||/",
        "~",
        "~*",
        "~<=~",
        "~<~",
        "~=",
        "~>=~",
        "~>~",
        "~~",
        "~~*",
        "!=",
        "BETWEEN",
        "NOT BETWEEN",
        "BETWEEN SYMMETRIC",
        "NOT BETWEEN SYMMETRIC",
    ];
    matches!(schema, None | Some("pg_catalog")) && OPS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_knows_common_reads_and_not_writes() {
        for f in [
            "lower",
            "count",
            "now",
            "pg_get_userbyid",
            "format_type",
            "current_setting",
        ] {
            assert!(is_safe_function(None, f), "{f}");
        }
        for f in [
            "nextval",
            "setval",
            "set_config",
            "pg_terminate_backend",
            "lo_import",
            "pg_advisory_lock",
            "txid_current",
            "setseed",
            "query_to_xml",
            "table_to_xml",
            "domain_in",
            "record_in",
        ] {
            assert!(!is_safe_function(None, f), "{f}");
        }
        assert!(!is_safe_function(Some("public"), "lower"));
        assert!(is_safe_function(Some("pg_catalog"), "lower"));
        assert!(is_safe_function(
            Some("information_schema"),
            "_pg_expandarray"
        ));
        assert!(!is_safe_function(None, "_pg_expandarray"));
        assert!(!is_safe_function(Some("public"), "_pg_expandarray"));
        assert!(!is_safe_function(Some("information_schema"), "lower"));
        for f in ["nextval", "pg_advisory_lock", "lo_unlink", "setseed"] {
            assert!(is_unsafe_by_attribute(f), "{f}");
        }
        for f in ["id", "name", "currval", "lower", "row_to_json"] {
            assert!(!is_unsafe_by_attribute(f), "{f}");
        }
    }
}
