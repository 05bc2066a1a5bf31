//! From YAML text to the raw file structs: picks the format from
//! `apiVersion`/`kind`, decodes strictly, and turns serde's errors into
//! [`ConfigError`]s that name the field, its line and a likely fix.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer as _, Visitor};
use serde_norway::Value;

use super::error::{ConfigError, ErrorKind};
use super::locate::{FieldPath, locate, locate_duplicate_key, locate_root};
use super::model::{Format, KIND_API_VERSION, SKIFF_API_VERSION};
use super::raw::{KindCluster, SkiffCluster};
use super::suggest;

/// A decoded file, before defaulting and validation.
pub(crate) struct Parsed {
    pub format: Format,
    pub doc: SkiffCluster,
}

/// Decodes `text`. `Ok(None)` when it holds no document at all (empty,
/// only comments, or `null`); [`super::load`] refuses such a file.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Option<Parsed>, ConfigError> {
    let (api_version, kind) = match peek(text, origin, 0)? {
        Peek::Empty => return Ok(None),
        Peek::Mapping { api_version, kind } => (api_version, kind),
        Peek::Other(what) => {
            return Err(ConfigError::new(
                ErrorKind::UnsupportedFormat,
                origin,
                format!("expected a Cluster mapping at the top level, found {what}"),
            )
            .at(locate_root(text))
            .with_hint(supported_formats_hint()));
        }
    };
    let format = detect_format(api_version, kind, text, origin)?;
    if format == Format::Skiff {
        // kind reads only the first document and silently drops the rest;
        // skiff's own format refuses to guess which one was meant.
        reject_extra_documents(text, origin)?;
    }
    let doc = decode(format, text, origin)?;
    Ok(Some(Parsed { format, doc }))
}

/// The shape of one document, and its `apiVersion`/`kind` if a mapping.
enum Peek {
    Empty,
    Mapping {
        api_version: Option<Value>,
        kind: Option<Value>,
    },
    Other(&'static str),
}

/// Reads document `index` just far enough to choose a format; reports YAML
/// syntax errors. Other keys are skipped unchecked, so that problems in
/// them (duplicates, types) are reported by the typed decode, which knows
/// where they are.
fn peek(text: &str, origin: &str, index: usize) -> Result<Peek, ConfigError> {
    let Some(document) = serde_norway::Deserializer::from_str(text).nth(index) else {
        return Ok(Peek::Empty);
    };
    document
        .deserialize_any(PeekVisitor)
        .map_err(|err| syntax_error(&err, text, origin))
}

struct PeekVisitor;

impl<'de> Visitor<'de> for PeekVisitor {
    type Value = Peek;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML document")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Peek, E> {
        Ok(Peek::Empty)
    }

    fn visit_none<E: de::Error>(self) -> Result<Peek, E> {
        Ok(Peek::Empty)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Peek, E> {
        Ok(Peek::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Peek, E> {
        Ok(Peek::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Peek, E> {
        Ok(Peek::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Peek, E> {
        Ok(Peek::Other("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Peek, E> {
        Ok(Peek::Other("a string"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Peek, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Peek::Other("a list"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Peek, A::Error> {
        let (mut api_version, mut kind) = (None, None);
        while let Some(key) = map.next_key::<Value>()? {
            match key.as_str() {
                Some("apiVersion") if api_version.is_none() => {
                    api_version = Some(map.next_value()?)
                }
                Some("kind") if kind.is_none() => kind = Some(map.next_value()?),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(Peek::Mapping { api_version, kind })
    }
}

fn reject_extra_documents(text: &str, origin: &str) -> Result<(), ConfigError> {
    let documents = serde_norway::Deserializer::from_str(text).count();
    for index in 1..documents {
        if !matches!(peek(text, origin, index)?, Peek::Empty) {
            return Err(ConfigError::new(
                ErrorKind::Syntax,
                origin,
                format!(
                    "found a second YAML document (document {}); a skiff config holds exactly one Cluster",
                    index + 1
                ),
            )
            .at(document_start(text, index))
            .with_hint("remove the `---` separator and everything after it, or move it to its own file"));
        }
    }
    Ok(())
}

/// 1-based line of the `---` that opens document `index` (0-based), if any.
/// The first document may or may not start with its own `---`.
fn document_start(text: &str, index: usize) -> Option<(usize, usize)> {
    let separators: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.starts_with("---"))
        .map(|(n, _)| n + 1)
        .collect();
    let documents = serde_norway::Deserializer::from_str(text).count();
    let unmarked_first = documents.saturating_sub(separators.len());
    let line = separators.get(index.checked_sub(unmarked_first)?)?;
    Some((*line, 1))
}

fn detect_format(
    api_version: Option<Value>,
    kind: Option<Value>,
    text: &str,
    origin: &str,
) -> Result<Format, ConfigError> {
    let format_error = |field: &str, message: String| {
        ConfigError::new(ErrorKind::UnsupportedFormat, origin, message)
            .at(locate(text, &FieldPath::root().key(field)).or_else(|| locate_root(text)))
            .with_path(field)
            .with_hint(supported_formats_hint())
    };
    let format = match &api_version {
        None | Some(Value::Null) => {
            return Err(format_error("apiVersion", "missing `apiVersion`".into()));
        }
        Some(Value::String(v)) if v == SKIFF_API_VERSION => Format::Skiff,
        Some(Value::String(v)) if v == KIND_API_VERSION => Format::Kind,
        Some(other) => {
            return Err(format_error(
                "apiVersion",
                format!("unsupported apiVersion {}", scalar_text(other)),
            ));
        }
    };
    match &kind {
        Some(Value::String(k)) if k == "Cluster" => Ok(format),
        None | Some(Value::Null) => Err(format_error(
            "kind",
            format!(
                "missing `kind: Cluster` (apiVersion is {})",
                format.api_version()
            ),
        )),
        Some(other) => Err(format_error(
            "kind",
            format!(
                "unsupported kind {} for apiVersion {}; only `Cluster` is supported",
                scalar_text(other),
                format.api_version()
            ),
        )),
    }
}

pub(crate) fn supported_formats_hint() -> String {
    format!(
        "start the file with `apiVersion: {SKIFF_API_VERSION}` (skiff's format) or \
         `apiVersion: {KIND_API_VERSION}` (a kind config), followed by `kind: Cluster`"
    )
}

/// Strict, typed decode of the first document.
fn decode(format: Format, text: &str, origin: &str) -> Result<SkiffCluster, ConfigError> {
    if text.contains("<<")
        && let Some(merged) = merged_document(text, origin)?
    {
        return decode_merged(format, merged, text, origin);
    }
    let Some(document) = serde_norway::Deserializer::from_str(text).next() else {
        return Ok(SkiffCluster::default());
    };
    let result = match format {
        Format::Skiff => SkiffCluster::deserialize(document),
        Format::Kind => KindCluster::deserialize(document).map(KindCluster::into_skiff),
    };
    result.map_err(|err| decode_error(&err, format, text, origin, true))
}

/// The first document with YAML merge keys (`<<: *base`) resolved, if it
/// has any. kind's decoder resolves them; serde_norway does so only on an
/// untyped value, so such documents take this slower path.
fn merged_document(text: &str, origin: &str) -> Result<Option<Value>, ConfigError> {
    let Some(document) = serde_norway::Deserializer::from_str(text).next() else {
        return Ok(None);
    };
    let mut value = Value::deserialize(document).map_err(|err| syntax_error(&err, text, origin))?;
    if !has_merge_key(&value) {
        return Ok(None);
    }
    value.apply_merge().map_err(|err| {
        ConfigError::new(
            ErrorKind::Syntax,
            origin,
            format!("invalid YAML merge key: {err}"),
        )
        .with_hint("`<<` takes a mapping (or an alias of one) to merge into this mapping")
    })?;
    Ok(Some(value))
}

fn has_merge_key(value: &Value) -> bool {
    match value {
        Value::Mapping(m) => m
            .iter()
            .any(|(k, v)| k.as_str() == Some("<<") || has_merge_key(v)),
        Value::Sequence(items) => items.iter().any(has_merge_key),
        Value::Tagged(tagged) => has_merge_key(&tagged.value),
        _ => false,
    }
}

/// Decoding from an untyped value loses positions and paths; errors then
/// name the problem only.
fn decode_merged(
    format: Format,
    value: Value,
    text: &str,
    origin: &str,
) -> Result<SkiffCluster, ConfigError> {
    let result = match format {
        Format::Skiff => serde_norway::from_value::<SkiffCluster>(value),
        Format::Kind => serde_norway::from_value::<KindCluster>(value).map(KindCluster::into_skiff),
    };
    result.map_err(|err| {
        let error = decode_error(&err, format, text, origin, false);
        // No position from serde here; an unknown key can still be found
        // by its text.
        match error.kind() {
            ErrorKind::UnknownField => {
                let field = backticked(error.message()).into_iter().next();
                let location = field.and_then(|f| find_key(text, &f));
                error.at(location)
            }
            _ => error,
        }
    })
}

/// Position of the first block-mapping key spelled `key` (`key:` at the
/// start of a line, after indentation or a list dash).
fn find_key(text: &str, key: &str) -> Option<(usize, usize)> {
    let wanted = format!("{key}:");
    text.lines().enumerate().find_map(|(n, line)| {
        let rest = line.trim_start_matches([' ', '-']);
        rest.starts_with(&wanted)
            .then(|| (n + 1, line.len() - rest.len() + 1))
    })
}

// ---------------------------------------------------------------------------
// Error translation
// ---------------------------------------------------------------------------

fn location_of(err: &serde_norway::Error) -> Option<(usize, usize)> {
    err.location().map(|l| (l.line(), l.column()))
}

/// serde_norway's `Display` is "<path>: <message> at line L column C"; the
/// location is reported separately, so cut it from the text.
fn message_without_location(err: &serde_norway::Error) -> String {
    let text = err.to_string();
    match err.location() {
        Some(l) => text.replacen(
            &format!(" at line {} column {}", l.line(), l.column()),
            "",
            1,
        ),
        None => text,
    }
}

fn syntax_error(err: &serde_norway::Error, text: &str, origin: &str) -> ConfigError {
    let location = location_of(err);
    let message = message_without_location(err);
    if let Some(rest) = message.split_once("duplicate entry with key ") {
        return ConfigError::new(
            ErrorKind::InvalidValue,
            origin,
            format!("duplicate key {}", rest.1),
        )
        .at(location)
        .with_hint("each key may appear only once in a mapping; remove or merge the repeated one");
    }
    let tabs = location
        .and_then(|(line, _)| text.lines().nth(line.saturating_sub(1)))
        .is_some_and(|line| line.contains('\t'));
    let hint = if tabs {
        "YAML does not allow tabs for indentation; indent with spaces".to_string()
    } else {
        "check the indentation and the `key: value` syntax around this line".to_string()
    };
    ConfigError::new(
        ErrorKind::Syntax,
        origin,
        format!("invalid YAML: {message}"),
    )
    .at(location)
    .with_hint(hint)
}

/// Splits "nodes[0].role: unknown variant ..." into path and message.
/// Paths never contain ": " while serde's messages start with a known
/// lowercase phrase, which is what makes the split unambiguous.
fn split_path(message: &str) -> (&str, &str) {
    const PHRASES: &[&str] = &[
        "unknown field",
        "unknown variant",
        "invalid type",
        "invalid value",
        "invalid length",
        "duplicate field",
        "duplicate key",
        "missing field",
    ];
    for phrase in PHRASES {
        if message.starts_with(phrase) {
            return ("", message);
        }
        if let Some(at) = message.find(&format!(": {phrase}")) {
            return (&message[..at], &message[at + 2..]);
        }
    }
    ("", message)
}

/// Turns a typed-decode error into a [`ConfigError`]. `positioned` is
/// false when decoding from a merged value, whose errors carry neither
/// position nor path.
fn decode_error(
    err: &serde_norway::Error,
    format: Format,
    text: &str,
    origin: &str,
    positioned: bool,
) -> ConfigError {
    let mut location = location_of(err);
    let full = message_without_location(err);
    let (path, message) = split_path(&full);
    let error = if let Some(rest) = message.strip_prefix("unknown field ") {
        unknown_field(format, origin, path, rest, positioned)
    } else if let Some(rest) = message.strip_prefix("unknown variant ") {
        unknown_variant(origin, path, rest)
    } else if let Some(rest) = message.strip_prefix("duplicate field ") {
        // serde reports a repeated struct field at the start of the
        // mapping; point at the repetition instead.
        let key = backticked(rest).into_iter().next().unwrap_or_default();
        location = locate_duplicate_key(text, &parse_path(path), &key).or(location);
        duplicate_key(
            origin,
            &format!("duplicate key `{key}` in {}", describe_context(path)),
        )
    } else if message.starts_with("duplicate key ") {
        duplicate_key(origin, &full)
    } else {
        invalid_type(origin, path, message)
    };
    error.at(location).with_path(path)
}

fn duplicate_key(origin: &str, message: &str) -> ConfigError {
    ConfigError::new(ErrorKind::InvalidValue, origin, message)
        .with_hint("each key may appear only once in a mapping; remove or merge the repeated one")
}

/// Reads serde_norway's rendering of a path (`nodes[0].extraMounts[1]`)
/// back into a [`FieldPath`]. Its keys are our field names, which contain
/// neither `.` nor `[`.
fn parse_path(path: &str) -> FieldPath {
    let mut out = FieldPath::root();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out = out.key(key);
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out = out.index(i);
            }
        }
    }
    out
}

/// Backtick-quoted words in serde's text: the field, then the expected names.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn unknown_field(
    format: Format,
    origin: &str,
    path: &str,
    rest: &str,
    positioned: bool,
) -> ConfigError {
    let words = backticked(rest);
    let field = words.first().cloned().unwrap_or_default();
    let expected = words.get(1..).unwrap_or_default();
    let message = if positioned {
        format!("unknown field `{field}` in {}", describe_context(path))
    } else {
        format!("unknown field `{field}`")
    };
    let hint = suggest::unknown_field_hint(format, last_key(path), &field, expected);
    ConfigError::new(ErrorKind::UnknownField, origin, message).with_opt_hint(hint)
}

fn unknown_variant(origin: &str, path: &str, rest: &str) -> ConfigError {
    let words = backticked(rest);
    let value = words.first().cloned().unwrap_or_default();
    let expected = words.get(1..).unwrap_or_default();
    let field = last_key(path);
    let hint = suggest::closest(&value, expected)
        .map(|best| format!("did you mean `{best}`?"))
        .or_else(|| suggest::known_alias(field, &value))
        .unwrap_or_else(|| format!("use one of: {}", expected.join(", ")));
    ConfigError::new(
        ErrorKind::InvalidValue,
        origin,
        format!(
            "{path}: invalid value `{value}`; expected one of: {}",
            expected.join(", ")
        ),
    )
    .with_hint(hint)
}

fn invalid_type(origin: &str, path: &str, message: &str) -> ConfigError {
    let message = friendlier_type_words(message);
    let hint = if message.contains("expected a boolean") {
        Some("use `true` or `false`".to_string())
    } else {
        type_hint(last_key(path))
    };
    let text = if path.is_empty() {
        message
    } else {
        format!("{path}: {message}")
    };
    ConfigError::new(ErrorKind::InvalidValue, origin, text).with_opt_hint(hint)
}

/// serde speaks Rust ("sequence", "i64"); say it in YAML terms.
fn friendlier_type_words(message: &str) -> String {
    let Some((found, expected)) = message.split_once(", expected ") else {
        return message.to_string();
    };
    let found = match found {
        "invalid type: sequence" => "invalid type: list",
        "invalid type: map" => "invalid type: mapping",
        other => other,
    };
    let expected = match expected {
        "a sequence" => "a list",
        "a map" => "a mapping",
        "i64" => "an integer",
        other => other,
    };
    format!("{found}, expected {expected}")
}

/// What a field's value should look like, for type errors.
fn type_hint(field: &str) -> Option<String> {
    let hint = match field {
        "nodes" => "`nodes` is a list: start each node with `- role: ...`",
        "extraPortMappings" => "`extraPortMappings` is a list of `- containerPort: N` entries",
        "extraMounts" => "`extraMounts` is a list of `- hostPath: ... containerPath: ...` entries",
        "containerPort" | "hostPort" | "apiServerPort" | "count" => {
            "write the number without quotes, e.g. `8080`"
        }
        "labels" | "featureGates" | "runtimeConfig" => "this is a mapping of `key: value` pairs",
        "kubeadmConfigPatches" | "containerdConfigPatches" => {
            "each patch is a string: use a block scalar (`- |`) followed by the indented patch"
        }
        "patch" => "the patch is a string: use `patch: |` followed by the indented operations",
        _ => return None,
    };
    Some(hint.to_string())
}

/// Last mapping key of a serde_norway path like `nodes[0].extraMounts[1]`.
fn last_key(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or("");
    last.split('[').next().unwrap_or("")
}

/// Human name of the object at `path`, e.g. "node (nodes[0])".
fn describe_context(path: &str) -> String {
    let what = match last_key(path) {
        "" => return "cluster".to_string(),
        "nodes" => "node",
        "networking" => return "networking".to_string(),
        "extraPortMappings" => "port mapping",
        "extraMounts" => "mount",
        "kubeadmConfigPatchesJSON6902" => "JSON 6902 patch",
        "addons" => "add-on",
        _ => return path.to_string(),
    };
    format!("{what} ({path})")
}

fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::Bool(b) => format!("`{b}`"),
        other => describe_value(other).to_string(),
    }
}
