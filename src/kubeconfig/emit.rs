//! A small block-style YAML writer for kubeconfig documents.
//!
//! Why not `serde_norway::to_string`? It targets YAML 1.2 and writes strings
//! such as `yes`, `no`, `on`, `off`, `y` or `1_000` unquoted. kubectl and
//! client-go read kubeconfigs with a YAML 1.1 resolver, which turns those
//! into booleans or numbers, so a perfectly valid `value: "yes"` in an exec
//! plugin's `env` would come back as `value: yes` and break kubectl for
//! every context in the file. This writer quotes every string that is not
//! obviously safe under both YAML 1.1 and 1.2, and the caller re-parses the
//! output and compares it with the input before anything reaches the disk.
//!
//! The layout mimics kubectl's own output (sequences under a key are not
//! indented, two-space indentation), so files stay familiar and diffs small.

use std::fmt::Write as _;

use serde_norway::{Mapping, Value};

/// Renders a top-level mapping as a YAML document ending in a newline.
///
/// Fails only for constructs a kubeconfig never has (a mapping or sequence
/// used as a mapping key); the caller turns that into an error instead of
/// writing something kubectl might read differently.
pub(super) fn document(doc: &Mapping) -> Result<String, String> {
    let mut out = String::new();
    if doc.is_empty() {
        out.push_str("{}\n");
        return Ok(out);
    }
    mapping(&mut out, doc, 0, false)?;
    Ok(out)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes `map` with keys at column `indent`. With `first_inline` the first
/// key continues the current line (after a sequence dash).
fn mapping(
    out: &mut String,
    map: &Mapping,
    indent: usize,
    first_inline: bool,
) -> Result<(), String> {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        key_scalar(out, key)?;
        out.push(':');
        after_key(out, value, indent)?;
    }
    Ok(())
}

/// Writes the value that follows `key:`, including the line break(s).
fn after_key(out: &mut String, value: &Value, indent: usize) -> Result<(), String> {
    match value {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2, false)
        }
        // kubectl style: the dashes of a sequence sit at the key's column.
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            sequence(out, s, indent, false)
        }
        Value::Tagged(t) => {
            let _ = write!(out, " {}", t.tag);
            if is_block_collection(&t.value) {
                // `key: !tag` followed by an indented block is valid YAML.
                after_key(out, &t.value, indent)
            } else {
                out.push(' ');
                flow_scalar(out, &t.value)?;
                out.push('\n');
                Ok(())
            }
        }
        other => {
            out.push(' ');
            flow_scalar(out, other)?;
            out.push('\n');
            Ok(())
        }
    }
}

fn sequence(
    out: &mut String,
    seq: &[Value],
    indent: usize,
    first_inline: bool,
) -> Result<(), String> {
    for (i, item) in seq.iter().enumerate() {
        if i > 0 || !first_inline {
            pad(out, indent);
        }
        out.push('-');
        sequence_item(out, item, indent + 2)?;
    }
    Ok(())
}

/// Writes one sequence item after its dash; nested content sits at `indent`.
fn sequence_item(out: &mut String, item: &Value, indent: usize) -> Result<(), String> {
    match item {
        Value::Mapping(m) if !m.is_empty() => {
            out.push(' ');
            mapping(out, m, indent, true)
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push(' ');
            sequence(out, s, indent, true)
        }
        Value::Tagged(t) => {
            let _ = write!(out, " {}", t.tag);
            if is_block_collection(&t.value) {
                // A tag followed by an inline mapping would tag the first key
                // instead, so the collection starts on its own line.
                out.push('\n');
                match &t.value {
                    Value::Mapping(m) => mapping(out, m, indent, false),
                    Value::Sequence(s) => sequence(out, s, indent, false),
                    _ => unreachable!("checked by is_block_collection"),
                }
            } else {
                out.push(' ');
                flow_scalar(out, &t.value)?;
                out.push('\n');
                Ok(())
            }
        }
        other => {
            out.push(' ');
            flow_scalar(out, other)?;
            out.push('\n');
            Ok(())
        }
    }
}

fn is_block_collection(value: &Value) -> bool {
    match value {
        Value::Mapping(m) => !m.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        _ => false,
    }
}

fn key_scalar(out: &mut String, key: &Value) -> Result<(), String> {
    match key {
        Value::Mapping(m) if !m.is_empty() => Err("a mapping used as a mapping key".to_owned()),
        Value::Sequence(s) if !s.is_empty() => Err("a list used as a mapping key".to_owned()),
        Value::Tagged(_) => Err("a tagged value used as a mapping key".to_owned()),
        other => flow_scalar(out, other),
    }
}

/// Writes a scalar, or an empty collection as `{}` / `[]`.
fn flow_scalar(out: &mut String, value: &Value) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => string(out, s),
        Value::Mapping(m) if m.is_empty() => out.push_str("{}"),
        Value::Sequence(s) if s.is_empty() => out.push_str("[]"),
        Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_) => {
            return Err("a nested collection in a scalar position".to_owned());
        }
    }
    Ok(())
}

/// Words that some YAML resolver (1.1 or 1.2) reads as a bool or null.
const RESERVED_WORDS: &[&str] = &["y", "yes", "n", "no", "true", "false", "on", "off", "null"];

/// True when `s` reads back as the same string under YAML 1.1 and 1.2.
///
/// Deliberately conservative: it must start with a letter or `/` (so no
/// number, sign, indicator or `~`), use only characters that are never
/// special in block context, and not end with `:`. That covers names,
/// URLs, paths and base64 certificate data; everything else is quoted.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/') || s.ends_with(':') {
        return false;
    }
    if !s.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@' | '+' | '=')
    }) {
        return false;
    }
    !RESERVED_WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

fn string(out: &mut String, s: &str) {
    if is_plain_safe(s) {
        out.push_str(s);
        return;
    }
    // Double quotes can represent any string, including line breaks.
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Control characters, and the Unicode line/paragraph separators
            // and BOM that YAML treats specially, are escaped numerically.
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let code = u32::from(c);
                if code <= 0xff {
                    let _ = write!(out, "\\x{code:02x}");
                } else {
                    let _ = write!(out, "\\u{code:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(yaml: &str) -> String {
        let value: Value = serde_norway::from_str(yaml).unwrap();
        let Value::Mapping(map) = &value else {
            panic!("not a mapping")
        };
        let text = document(map).unwrap();
        let back: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(
            back, value,
            "round trip changed the value; emitted:\n{text}"
        );
        text
    }

    #[test]
    fn kubectl_like_layout() {
        let text = roundtrip(
            "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: a\nkind: Config\npreferences: {}\nusers: []\n",
        );
        assert_eq!(
            text,
            "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: a\nkind: Config\npreferences: {}\nusers: []\n"
        );
    }

    #[test]
    fn yaml11_ambiguous_strings_are_quoted() {
        let text = roundtrip(
            "a: 'yes'\nb: 'on'\nc: 'Y'\nd: '010'\ne: '1_000'\nf: 'true'\ng: '~'\nh: 'NO'\ni: '12:30'\nj: ''\nk: 'off'\nl: '.inf'\nm: 'a:'\n",
        );
        for line in text.lines() {
            let (_, v) = line.split_once(": ").unwrap();
            assert!(v.starts_with('"'), "unquoted: {line}");
        }
    }

    #[test]
    fn plain_for_common_kubeconfig_values() {
        let text = roundtrip(
            "server: https://127.0.0.1:38123\nname: skiff-dev\ndata: LS0tLS1CRUdJTi+/=\npath: /home/u/.kube/x.crt\nuser: kubernetes-admin@kubernetes\n",
        );
        assert!(!text.contains('"'), "{text}");
    }

    #[test]
    fn special_characters_and_nesting_round_trip() {
        roundtrip(concat!(
            "a: \"line1\\nline2\\ttab \\\"q\\\" \\\\ \\x07 \\u2028 é\"\n",
            "b: '# not a comment'\n",
            "c: '- dash'\n",
            "d: 'k: v'\n",
            "e: [[1, 2], [], {}, {x: [y]}]\n",
            "f: {g: null, h: 1.5, i: -3, j: .nan, k: true}\n",
            "l: !custom {m: 1}\n",
            "n: [!custom x, !other {o: p}]\n",
            "1: numeric key\n",
            "'yes': quoted key\n",
            "p:\n- - a\n  - b\n- - c\n",
        ));
    }

    #[test]
    fn complex_keys_are_rejected() {
        let value: Value = serde_norway::from_str("? [a, b]\n: c\n").unwrap();
        let Value::Mapping(map) = &value else {
            panic!()
        };
        assert!(document(map).is_err());
    }

    #[test]
    fn empty_document() {
        assert_eq!(document(&Mapping::new()).unwrap(), "{}\n");
    }
}
