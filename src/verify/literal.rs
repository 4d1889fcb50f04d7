//! SQL literals for the backfill's text `INSERT`s: a value read from the source over the binary
//! protocol (typed), written back so the target stores exactly the same value.
//!
//! The backfill's connections are [`crate::db::Server`]s: `SET NAMES utf8mb4` and a `sql_mode`
//! without `NO_BACKSLASH_ESCAPES` (both pinned at connect), so:
//!
//! - binary columns (`BINARY`, `VARBINARY`, `BLOB`s, `BIT`, spatial and `VECTOR` types) are written
//!   as hex literals `X'..'`: their bytes, no character set;
//! - every other string value (character columns, `DECIMAL` as text, `ENUM`, `SET`, `JSON`) came
//!   back in utf8mb4 and is written as a quoted utf8mb4 literal, backslash-escaped (`\0`, `\n`,
//!   `\r`, `\Z`, `\\`, `\'`); bytes that are not valid UTF-8 (none should come back in utf8mb4)
//!   are written `_utf8mb4 X'..'`, the same bytes with the character set said;
//! - integers bare; `FLOAT` as the exact decimal of its value widened to `DOUBLE` (the server
//!   parses it to that double, then narrows it back exactly); `DOUBLE` as its shortest
//!   round-trip decimal; dates and times as quoted text with microseconds (the comparison
//!   sessions use `time_zone = '+00:00'` on both sides, so `TIMESTAMP` text is not shifted);
//! - `NULL` as `NULL`.

use mysql_async::Value;
use std::fmt::Write;

/// Data types whose values are bytes, not characters: written as `X'..'`.
const BINARY_TYPES: &[&str] = &[
    "binary",
    "varbinary",
    "tinyblob",
    "blob",
    "mediumblob",
    "longblob",
    "bit",
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
    "geomcollection",
    "vector",
];

/// Whether a column of this `DATA_TYPE` (lower case) is written as bytes.
pub fn is_binary(data_type: &str) -> bool {
    BINARY_TYPES.contains(&data_type)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2 + 3);
    out.push_str("X'");
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out.push('\'');
}

fn push_quoted(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1a' => out.push_str("\\Z"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Appends `v` as an SQL literal for a column that is binary (`binary`) or not.
pub fn push_literal(out: &mut String, v: &Value, binary: bool) {
    // Writing into a String cannot fail.
    let _ = match v {
        Value::NULL => {
            out.push_str("NULL");
            Ok(())
        }
        Value::Bytes(b) if binary => {
            push_hex(out, b);
            Ok(())
        }
        Value::Bytes(b) => {
            match std::str::from_utf8(b) {
                Ok(s) => push_quoted(out, s),
                Err(_) => {
                    out.push_str("_utf8mb4 ");
                    push_hex(out, b);
                }
            }
            Ok(())
        }
        Value::Int(i) => write!(out, "{i}"),
        Value::UInt(u) => write!(out, "{u}"),
        Value::Float(f) => write!(out, "{:?}", f64::from(*f)),
        Value::Double(d) => write!(out, "{d:?}"),
        Value::Date(y, mo, d, 0, 0, 0, 0) => write!(out, "'{y:04}-{mo:02}-{d:02}'"),
        Value::Date(y, mo, d, h, mi, s, 0) => write!(out, "'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}'"),
        Value::Date(y, mo, d, h, mi, s, us) => write!(out, "'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}'"),
        Value::Time(neg, days, h, mi, s, us) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let sign = if *neg { "-" } else { "" };
            if *us == 0 {
                write!(out, "'{sign}{hours:02}:{mi:02}:{s:02}'")
            } else {
                write!(out, "'{sign}{hours:02}:{mi:02}:{s:02}.{us:06}'")
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value, binary: bool) -> String {
        let mut s = String::new();
        push_literal(&mut s, &v, binary);
        s
    }

    #[test]
    fn strings_are_escaped_and_bytes_written_in_hex() {
        assert_eq!(lit(Value::Bytes(b"it's a \\ \0\n\r\x1a \"x\"".to_vec()), false), "'it\\'s a \\\\ \\0\\n\\r\\Z \"x\"'");
        assert_eq!(lit(Value::Bytes("é😀".as_bytes().to_vec()), false), "'é😀'");
        assert_eq!(lit(Value::Bytes(vec![0xff, 0x00, 0x27]), false), "_utf8mb4 X'FF0027'");
        assert_eq!(lit(Value::Bytes(vec![0xff, 0x00, 0x27]), true), "X'FF0027'");
        assert_eq!(lit(Value::Bytes(b"abc".to_vec()), true), "X'616263'");
        assert_eq!(lit(Value::Bytes(Vec::new()), true), "X''");
        assert_eq!(lit(Value::Bytes(Vec::new()), false), "''");
        assert_eq!(lit(Value::NULL, true), "NULL");
    }

    #[test]
    fn numbers_and_times_round_trip() {
        assert_eq!(lit(Value::Int(-9_223_372_036_854_775_808), false), "-9223372036854775808");
        assert_eq!(lit(Value::UInt(u64::MAX), false), "18446744073709551615");
        // The f32 nearest 0.1, exactly as a double: parsed back, then narrowed, it is the same f32.
        assert_eq!(lit(Value::Float(0.1), false), "0.10000000149011612");
        assert_eq!(lit(Value::Double(0.1), false), "0.1");
        assert_eq!(lit(Value::Double(1e300), false), "1e300");
        assert_eq!(lit(Value::Date(2026, 1, 2, 3, 4, 5, 60), false), "'2026-01-02 03:04:05.000060'");
        assert_eq!(lit(Value::Time(true, 1, 2, 3, 4, 5), false), "'-26:03:04.000005'");
        assert_eq!(lit(Value::Time(false, 0, 0, 0, 0, 0), false), "'00:00:00'");
        assert_eq!(lit(Value::Date(2026, 1, 2, 0, 0, 0, 0), false), "'2026-01-02'");
        assert_eq!(lit(Value::Date(2026, 1, 2, 3, 4, 5, 0), false), "'2026-01-02 03:04:05'");
    }
}
