use super::*;
use crate::classify::classify;

fn who<'a>(user: &'a str, groups: &'a [String]) -> Requester<'a> {
    Requester {
        user,
        database: "app",
        groups,
    }
}

#[test]
fn shipped_policy_cases_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let policy = Policy::load(&dir).expect("shipped policy loads");
    let cases = cases::load(&dir).expect("cases load");
    assert!(cases.len() >= 20);
    let failures: Vec<String> = cases::run(&policy, cases)
        .into_iter()
        .filter_map(|o| {
            o.failure
                .map(|f| format!("{}:{}: {}: {f}", o.file.display(), o.line, o.case.sql))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn compiled_in_policy_is_the_shipped_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let on_disk = Policy::load(&dir).unwrap();
    let compiled = shipped();
    assert_eq!(
        on_disk.rules.iter().map(|r| &r.name).collect::<Vec<_>>(),
        compiled.rules.iter().map(|r| &r.name).collect::<Vec<_>>()
    );
}

#[test]
fn matching_on_user_group_database_tables_and_functions() {
    let text = r#"
[[rule]]
name = "ops-may-vacuum"
group = ["ops"]
command = ["vacuum"]
action = "allow"

[[rule]]
name = "audit-is-append-only"
tables = ["audit_*"]
kind = ["write"]
command = ["UPDATE", "DELETE"]
action = "deny"
message = "the audit log is append-only"

[[rule]]
name = "app-writes"
user = ["app_*"]
database = ["app"]
kind = ["write"]
action = "allow"

[[rule]]
name = "reporting-functions"
functions = ["reporting.*"]
action = "require_approval"
approvers = ["analysts"]
timeout = "90s"

[[rule]]
name = "rest"
action = "require_approval"
approvers = ["reviewers"]
approvals = 2
"#;
    let p = Policy::from_sources(&[("t.toml", text)]).unwrap();
    let ops = vec!["ops".to_string()];
    let none: Vec<String> = vec![];
    let d = |sql: &str, w: &Requester| p.decide(&classify(sql), w);
    assert_eq!(d("VACUUM t", &who("bob", &ops)).rule(), "ops-may-vacuum");
    assert_eq!(d("VACUUM t", &who("bob", &none)).rule(), "rest");
    assert_eq!(
        d("DELETE FROM audit_log WHERE id = 1", &who("app_1", &none)),
        Decision::Deny {
            rule: "audit-is-append-only".into(),
            message: "the audit log is append-only".into()
        }
    );
    assert_eq!(
        d("INSERT INTO audit_log VALUES (1)", &who("app_1", &none)).rule(),
        "app-writes"
    );
    assert_eq!(
        d("INSERT INTO t VALUES (1)", &who("alice", &none)).rule(),
        "rest"
    );
    match d("SELECT reporting.refresh()", &who("alice", &none)) {
        Decision::RequireApproval {
            rule,
            approvers,
            approvals,
            timeout,
        } => {
            assert_eq!(rule, "reporting-functions");
            assert_eq!(approvers, vec!["analysts"]);
            assert_eq!(approvals, 1);
            assert_eq!(timeout, Duration::from_secs(90));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn strictest_statement_decides_a_message() {
    let p = shipped();
    let none: Vec<String> = vec![];
    let d = p.decide(
        &classify("SELECT 1; UPDATE t SET a = 1 WHERE id = 2; DROP TABLE t"),
        &who("a", &none),
    );
    match d {
        Decision::RequireApproval {
            approvals, rule, ..
        } => {
            assert_eq!(approvals, 2);
            assert_eq!(rule, "destructive-changes");
        }
        other => panic!("{other:?}"),
    }
    let d = p.decide(
        &classify("UPDATE t SET a = 1 WHERE id = 2; SET ROLE x"),
        &who("a", &none),
    );
    assert_eq!(d.name(), "deny");
    assert_eq!(p.decide(&classify(""), &who("a", &none)).name(), "allow");
}

#[test]
fn no_matching_rule_denies() {
    let p = Policy::from_sources(&[(
        "t.toml",
        "[[rule]]\nname = \"r\"\nkind = [\"read\"]\naction = \"allow\"\n",
    )])
    .unwrap();
    let none: Vec<String> = vec![];
    let d = p.decide(&classify("DELETE FROM t WHERE id = 1"), &who("a", &none));
    assert_eq!(d.name(), "deny");
    assert_eq!(d.rule(), NO_RULE);
}

#[test]
fn errors_name_file_and_line_and_all_are_reported() {
    let text = "[[rule]]\nname = \"a\"\naction = \"allow\"\n\n[[rule]]\nname = \"b\"\nkind = [\"reed\"]\nrisks = [\"nope\"]\naction = \"require_approval\"\n";
    let errs = Policy::from_sources(&[("p.toml", text)]).unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs.iter().all(|e| e.file == "p.toml" && e.line == 5),
        "{errs:?}"
    );
    let errs = Policy::from_sources(&[("q.toml", "[[rule]]\nname = \"a\"\nactoin = \"allow\"\n")])
        .unwrap_err();
    assert_eq!(errs[0].line, 3, "{errs:?}");
    let errs = Policy::from_sources(&[(
        "r.toml",
        "[[rule]]\nname = 'a'\naction = 'allow'\n[[rule]]\nname = 'a'\naction = 'allow'\n",
    )])
    .unwrap_err();
    assert!(errs[0].message.contains("used twice"));
}
