//! [`ConfigError`]: one line that says where and what, plus an optional hint
//! that says how to fix it.
//!
//! The line is meant to be printed as is (`error: {err}`) followed by the
//! hint (`hint: {hint}`), so messages never contain newlines and always start
//! with the origin (`cluster.yaml:7:5: ...`), like a compiler diagnostic.

use std::fmt;

/// Broad class of a [`ConfigError`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text is not (a single document of) valid YAML.
    Syntax,
    /// `apiVersion`/`kind` missing or not one skiff reads.
    UnsupportedFormat,
    /// A mapping key that the format does not define.
    UnknownField,
    /// A value of the wrong type, out of range, or otherwise not allowed.
    InvalidValue,
    /// Two settings that cannot both hold (duplicate ports, overlapping
    /// subnets, mutually exclusive fields, no control plane, ...).
    Conflict,
    /// A host path that is not usable (relative or missing).
    HostPath,
    /// A command-line override that cannot be applied.
    Override,
}

/// A problem with the cluster configuration.
///
/// `Display` is a single line: `origin[:line:column]: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(Box<Details>);

/// The fields of a [`ConfigError`], boxed so `Result<_, ConfigError>`
/// stays one pointer wide on the happy path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Details {
    kind: ErrorKind,
    origin: String,
    location: Option<(usize, usize)>,
    path: Option<String>,
    message: String,
    hint: Option<String>,
}

impl ConfigError {
    /// Builds an error; newlines in `message` are folded so `Display` stays
    /// on one line.
    pub(crate) fn new(kind: ErrorKind, origin: &str, message: impl Into<String>) -> ConfigError {
        ConfigError(Box::new(Details {
            kind,
            origin: origin.to_string(),
            location: None,
            path: None,
            message: one_line(&message.into()),
            hint: None,
        }))
    }

    pub(crate) fn at(mut self, location: Option<(usize, usize)>) -> ConfigError {
        self.0.location = location;
        self
    }

    pub(crate) fn with_path(mut self, path: impl Into<String>) -> ConfigError {
        let path = path.into();
        self.0.path = (!path.is_empty()).then_some(path);
        self
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> ConfigError {
        self.0.hint = Some(one_line(&hint.into()));
        self
    }

    pub(crate) fn with_opt_hint(self, hint: Option<String>) -> ConfigError {
        match hint {
            Some(h) => self.with_hint(h),
            None => self,
        }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Where the configuration came from (`cluster.yaml`, `<stdin>`,
    /// `command line`).
    pub fn origin(&self) -> &str {
        &self.0.origin
    }

    /// 1-based line in the file, when known.
    pub fn line(&self) -> Option<usize> {
        self.0.location.map(|(l, _)| l)
    }

    /// 1-based column in the file, when known.
    pub fn column(&self) -> Option<usize> {
        self.0.location.map(|(_, c)| c)
    }

    /// Path of the offending field, e.g. `nodes[2].extraPortMappings[0].hostPort`.
    pub fn path(&self) -> Option<&str> {
        self.0.path.as_deref()
    }

    /// The problem, without origin and location.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// How to fix it, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        self.0.hint.clone()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.origin)?;
        if let Some((line, column)) = self.0.location {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.0.message)
    }
}

/// Folds a possibly multi-line text (e.g. a YAML parser message) into one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
