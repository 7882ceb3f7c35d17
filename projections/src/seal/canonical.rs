//! RFC 8785 JSON Canonicalization Scheme (JCS): the one byte string of a JSON value that an
//! independent implementation computes too. Object members sorted by the UTF-16 code units of
//! their names, no whitespace, strings with the minimal escapes, numbers as ECMAScript writes
//! them.

use serde_json::Value;

/// The canonical text of `value`.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Appends the canonical text of `value` to `out`.
pub fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut names: Vec<&String> = members.keys().collect();
            names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, name) in names.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write(&members[name], out);
            }
            out.push('}');
        }
    }
}

/// Integers up to 2^53 as written; everything else as the IEEE double ECMAScript would print.
fn write_number(number: &serde_json::Number, out: &mut String) {
    const SAFE: u64 = 1 << 53;
    if let Some(i) = number.as_i64() {
        if i.unsigned_abs() <= SAFE {
            out.push_str(&i.to_string());
            return;
        }
    } else if let Some(u) = number.as_u64() {
        if u <= SAFE {
            out.push_str(&u.to_string());
            return;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let float = number
        .as_f64()
        .or_else(|| number.as_i64().map(|i| i as f64))
        .or_else(|| number.as_u64().map(|u| u as f64))
        .unwrap_or(0.0);
    out.push_str(&es_number(float));
}

/// ECMAScript's Number::toString for a finite double (ECMA-262 §6.1.6.1.20), from the
/// shortest round-trip digits Rust finds.
pub fn es_number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // `{:e}` gives the shortest digits: d[.ddd]e<exp>.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!(
            "{digits}{}",
            "0".repeat(usize::try_from(n - k).unwrap_or(0))
        )
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat(usize::try_from(-n).unwrap_or(0)))
    } else {
        let e = n - 1;
        let exp = if e < 0 {
            format!("e-{}", -e)
        } else {
            format!("e+{e}")
        };
        if k == 1 {
            format!("{digits}{exp}")
        } else {
            format!("{}.{}{exp}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn members_sort_by_utf16_code_units_and_strings_escape_minimally() {
        // RFC 8785 §3.2.3's sorting example: "\u20ac" (€) sorts before "\ud83d\ude00" (😀) by
        // UTF-16 code units although its code point is smaller… and after "\u0080".
        let value = json!({
            "\u{20ac}": "Euro Sign",
            "\r": "Carriage Return",
            "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\u{1f600}": "Emoji: Grinning Face",
            "\u{80}": "Control",
            "\u{f6}": "Latin Small Letter O With Diaeresis"
        });
        assert_eq!(
            canonical(&value),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
        assert_eq!(
            canonical(&json!([
                "\u{1}\u{1f}\"\\/\u{7f}\u{2028}",
                "\u{8}\u{c}\n\r\t"
            ])),
            "[\"\\u0001\\u001f\\\"\\\\/\u{7f}\u{2028}\",\"\\b\\f\\n\\r\\t\"]"
        );
        assert_eq!(
            canonical(&json!({"b": [true, false, null], "a": {}})),
            "{\"a\":{},\"b\":[true,false,null]}"
        );
    }

    #[test]
    #[allow(clippy::excessive_precision)] // RFC 8785's own example.
    fn numbers_print_as_ecmascript_does() {
        // RFC 8785 appendix B's examples.
        for (value, text) in [
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (333333333.33333329, "333333333.3333333"),
            (4.50, "4.5"),
            (2e-3, "0.002"),
            (0.000000000000000000000000001, "1e-27"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (295147905179352830000.0, "295147905179352830000"),
            (9007199254740994.0, "9007199254740994"),
        ] {
            assert_eq!(es_number(value), text, "{value:e}");
        }
        assert_eq!(canonical(&json!(9007199254740992_i64)), "9007199254740992");
        assert_eq!(canonical(&json!(-42)), "-42");
        assert_eq!(canonical(&json!(1.0)), "1");
    }
}
