//! Shell-style globs for names in rules: `*` matches any run of characters,
//! `?` one character; everything else matches itself.

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Matches a relation or function name: a pattern with a dot is matched
/// against the name as written (`schema.name`), a pattern without one
/// against the last component.
pub fn matches_object(pattern: &str, name: &str) -> bool {
    if pattern.contains('.') {
        matches(pattern, name)
    } else {
        matches(pattern, name.rsplit('.').next().unwrap_or(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("*", ""));
        assert!(matches("app_*", "app_orders"));
        assert!(!matches("app_*", "xapp_orders"));
        assert!(matches("a?c", "abc"));
        assert!(matches("*_audit*", "x_audit_log"));
        assert!(!matches("abc", "abcd"));
        assert!(matches_object("accounts", "public.accounts"));
        assert!(matches_object("public.*", "public.accounts"));
        assert!(!matches_object("public.*", "accounts"));
    }
}
