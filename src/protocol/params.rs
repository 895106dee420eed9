//! Bound parameters as a reviewer reads them: text-format values as text,
//! binary values of common types decoded, anything else as hex.

/// Decodes one parameter value. `format` is 0 (text) or 1 (binary);
/// `type_oid` is the type the Parse declared (0 when the server infers it).
pub fn display(value: Option<&[u8]>, format: i16, type_oid: u32) -> Option<String> {
    let v = value?;
    if format == 0 {
        return Some(String::from_utf8_lossy(v).into_owned());
    }
    let int = |n: usize| -> Option<i64> {
        (v.len() == n).then(|| match n {
            2 => i16::from_be_bytes([v[0], v[1]]) as i64,
            4 => i32::from_be_bytes([v[0], v[1], v[2], v[3]]) as i64,
            _ => i64::from_be_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]),
        })
    };
    let decoded = match type_oid {
        16 if v.len() == 1 => Some(if v[0] != 0 { "true" } else { "false" }.to_string()),
        21 => int(2).map(|n| n.to_string()),
        23 | 26 => int(4).map(|n| n.to_string()),
        20 => int(8).map(|n| n.to_string()),
        700 if v.len() == 4 => Some(f32::from_be_bytes([v[0], v[1], v[2], v[3]]).to_string()),
        701 => int(8).map(|n| f64::from_bits(n as u64).to_string()),
        25 | 1043 | 1042 | 19 | 114 => Some(String::from_utf8_lossy(v).into_owned()),
        3802 if v.first() == Some(&1) => Some(String::from_utf8_lossy(&v[1..]).into_owned()),
        2950 if v.len() == 16 => Some(uuid(v)),
        1082 => int(4).map(|d| format!("date {d} days after 2000-01-01")),
        1114 | 1184 => int(8).map(|us| format!("{us} µs after 2000-01-01 00:00:00 UTC")),
        _ => None,
    };
    Some(decoded.unwrap_or_else(|| {
        let mut s = String::with_capacity(2 + 2 * v.len());
        s.push_str("\\x");
        for b in v {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }))
}

fn uuid(v: &[u8]) -> String {
    let h: Vec<String> = v.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// The format code of parameter `i`: Bind sends none (all text), one (for
/// all), or one per parameter.
pub fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types() {
        assert_eq!(display(Some(b"42"), 0, 0).as_deref(), Some("42"));
        assert_eq!(display(None, 1, 23), None);
        assert_eq!(
            display(Some(&7i32.to_be_bytes()), 1, 23).as_deref(),
            Some("7")
        );
        assert_eq!(
            display(Some(&(-9i64).to_be_bytes()), 1, 20).as_deref(),
            Some("-9")
        );
        assert_eq!(
            display(Some(&1.5f64.to_bits().to_be_bytes()), 1, 701).as_deref(),
            Some("1.5")
        );
        assert_eq!(display(Some(&[1]), 1, 16).as_deref(), Some("true"));
        assert_eq!(display(Some(b"hi"), 1, 25).as_deref(), Some("hi"));
        assert_eq!(
            display(Some(&[0xde, 0xad]), 1, 17).as_deref(),
            Some("\\xdead")
        );
        assert_eq!(
            display(Some(&[0u8; 16]), 1, 2950).as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
        assert_eq!(format_of(&[], 3), 0);
        assert_eq!(format_of(&[1], 3), 1);
        assert_eq!(format_of(&[0, 1], 1), 1);
    }
}
