//! Field paths (`nodes[2].extraPortMappings[0].hostPort`) and finding the
//! line/column of such a path in the YAML text.
//!
//! serde_norway has no spanned values, but it does attach the position of
//! the current YAML event to any error raised while a value is being
//! visited. [`locate`] exploits that: it re-reads the document with a
//! visitor that walks down the path, ignoring everything else, and fails on
//! purpose when it reaches the target; the position attached to that
//! failure is the position of the target value. This costs one extra parse,
//! and only on the error path.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Path of a value inside the configuration document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(Vec<Seg>);

impl FieldPath {
    pub(crate) fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// This path extended by a mapping key.
    pub(crate) fn key(&self, key: &str) -> FieldPath {
        let mut next = self.clone();
        next.0.push(Seg::Key(key.to_string()));
        next
    }

    /// This path extended by a sequence index.
    pub(crate) fn index(&self, index: usize) -> FieldPath {
        let mut next = self.clone();
        next.0.push(Seg::Index(index));
        next
    }

    pub(crate) fn segments(&self) -> &[Seg] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                // Label keys contain dots and slashes; quote anything that
                // would make the dotted form ambiguous.
                Seg::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Message of the deliberate failure; never shown to users.
const FOUND: &str = "\u{0}skiff-locate-found";

/// 1-based (line, column) of the value at `path` in the first YAML document
/// of `text`. Falls back to the closest ancestor that exists, so a missing
/// field is reported at its parent mapping. `None` when nothing but the
/// root matches (the root position says nothing useful).
pub(crate) fn locate(text: &str, path: &FieldPath) -> Option<(usize, usize)> {
    let segs = path.segments();
    (1..=segs.len())
        .rev()
        .find_map(|len| locate_exact(text, &segs[..len]))
}

/// 1-based (line, column) where the first document's top-level value
/// starts (after any leading comments).
pub(crate) fn locate_root(text: &str) -> Option<(usize, usize)> {
    locate_exact(text, &[])
}

/// 1-based (line, column) of the second occurrence of `key` in the mapping
/// at `parent`: where a duplicate key is.
pub(crate) fn locate_duplicate_key(
    text: &str,
    parent: &FieldPath,
    key: &str,
) -> Option<(usize, usize)> {
    run_probe(
        text,
        Probe {
            rest: parent.segments(),
            duplicate_of: Some(key),
        },
    )
}

fn locate_exact(text: &str, segs: &[Seg]) -> Option<(usize, usize)> {
    run_probe(
        text,
        Probe {
            rest: segs,
            duplicate_of: None,
        },
    )
}

fn run_probe(text: &str, probe: Probe<'_>) -> Option<(usize, usize)> {
    let document = serde_norway::Deserializer::from_str(text).next()?;
    match probe.deserialize(document) {
        Err(err) if err.to_string().contains(FOUND) => {
            err.location().map(|loc| (loc.line(), loc.column()))
        }
        _ => None,
    }
}

/// Walks down `rest`; errors with [`FOUND`] at the end of it, or, with
/// `duplicate_of`, at the second occurrence of that key in the mapping
/// found there.
struct Probe<'p> {
    rest: &'p [Seg],
    duplicate_of: Option<&'p str>,
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if let (true, Some(key)) = (self.rest.is_empty(), self.duplicate_of) {
            return find_second_key(map, key);
        }
        let Some((Seg::Key(want), rest)) = self.rest.split_first() else {
            return self.found_or_skip_map(map);
        };
        while let Some(key) = map.next_key::<KeyString>()? {
            if key.0 == *want {
                return map.next_value_seed(Probe {
                    rest,
                    duplicate_of: self.duplicate_of,
                });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.rest.split_first() else {
            return self.found_or_skip_seq(seq);
        };
        let mut index = 0;
        while index < *want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
            index += 1;
        }
        seq.next_element_seed(Probe {
            rest,
            duplicate_of: self.duplicate_of,
        })
        .map(|_| ())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.found_scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.found_scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.found_scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.found_scalar()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.found_scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.found_scalar()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.found_scalar()
    }
}

impl Probe<'_> {
    fn found_scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.rest.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }

    fn found_or_skip_map<'de, A: MapAccess<'de>>(&self, mut map: A) -> Result<(), A::Error> {
        if self.rest.is_empty() {
            return Err(de::Error::custom(FOUND));
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn found_or_skip_seq<'de, A: SeqAccess<'de>>(&self, mut seq: A) -> Result<(), A::Error> {
        if self.rest.is_empty() {
            return Err(de::Error::custom(FOUND));
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// Reads keys until `key` comes up a second time, and fails inside that
/// key's own deserialization so the error carries the key's position.
fn find_second_key<'de, A: MapAccess<'de>>(mut map: A, key: &str) -> Result<(), A::Error> {
    let mut seen = false;
    while let Some(matched) = map.next_key_seed(SecondKey { key, seen })? {
        map.next_value::<IgnoredAny>()?;
        seen |= matched;
    }
    Ok(())
}

/// Key seed for [`find_second_key`]; `seen` means the key was read before.
struct SecondKey<'k> {
    key: &'k str,
    seen: bool,
}

impl<'de> DeserializeSeed<'de> for SecondKey<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for SecondKey<'_> {
    /// Whether this key is the one looked for.
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        if v == self.key && self.seen {
            return Err(E::custom(FOUND));
        }
        Ok(v == self.key)
    }
}

/// A mapping key read as text; serde_norway hands any plain scalar key
/// (`80:`, `true:`) to `deserialize_str` as its text.
struct KeyString(String);

impl<'de> de::Deserialize<'de> for KeyString {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(KeyString)
    }
}
