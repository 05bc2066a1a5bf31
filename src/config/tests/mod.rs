//! Tests for the whole `config` module, through its public API.
//!
//! Helpers here keep the cases short: `skiff(body)`/`kind(body)` prepend
//! the header of each format, `ok`/`err` load from a file named
//! `cluster.yaml`.

use std::path::{Path, PathBuf};

use super::*;

mod errors;
mod formats;
mod kind_examples;
mod overrides;
mod schema;
mod validation;

pub(super) const SKIFF_HEADER: &str = "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\n";
pub(super) const KIND_HEADER: &str = "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\n";

pub(super) fn skiff(body: &str) -> String {
    format!("{SKIFF_HEADER}{body}")
}

pub(super) fn kind(body: &str) -> String {
    format!("{KIND_HEADER}{body}")
}

pub(super) fn load_with(text: &str, overrides: &Overrides) -> Result<Cluster, ConfigError> {
    load(
        Some(Source {
            text,
            origin: "cluster.yaml",
        }),
        overrides,
    )
}

/// Loads `text`, panicking with the rendered error and hint on failure.
pub(super) fn ok(text: &str) -> Cluster {
    ok_with(text, &Overrides::default())
}

pub(super) fn ok_with(text: &str, overrides: &Overrides) -> Cluster {
    load_with(text, overrides).unwrap_or_else(|e| {
        panic!(
            "expected success, got: {e}\nhint: {:?}\n---\n{text}",
            e.hint()
        )
    })
}

/// Loads `text`, expecting an error.
pub(super) fn err(text: &str) -> ConfigError {
    err_with(text, &Overrides::default())
}

pub(super) fn err_with(text: &str, overrides: &Overrides) -> ConfigError {
    match load_with(text, overrides) {
        Ok(cluster) => panic!("expected an error, got {cluster:#?}\n---\n{text}"),
        Err(e) => e,
    }
}

/// Asserts that `e` renders as `expected` and that its hint contains
/// `hint_part`.
#[track_caller]
pub(super) fn assert_error(e: &ConfigError, expected: &str, hint_part: &str) {
    assert_eq!(e.to_string(), expected, "hint was {:?}", e.hint());
    let hint = e.hint().unwrap_or_default();
    assert!(
        hint.contains(hint_part),
        "hint {hint:?} should contain {hint_part:?} (error: {e})"
    );
}

/// Asserts that the error message contains every one of `parts`.
#[track_caller]
pub(super) fn assert_mentions(e: &ConfigError, parts: &[&str]) {
    let text = e.to_string();
    for part in parts {
        assert!(text.contains(part), "{text:?} should contain {part:?}");
    }
}

#[track_caller]
pub(super) fn assert_hint(e: &ConfigError, part: &str) {
    let hint = e.hint().unwrap_or_default();
    assert!(
        hint.contains(part),
        "hint {hint:?} should contain {part:?} (error: {e})"
    );
}

/// A temporary directory (deleted on drop) with a file `file.txt` and a
/// directory `dir` inside, for mount tests.
pub(super) struct HostDir {
    dir: tempfile::TempDir,
}

impl HostDir {
    pub(super) fn new() -> HostDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("file.txt"), "x").expect("write file");
        std::fs::create_dir(dir.path().join("dir")).expect("create dir");
        HostDir { dir }
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(super) fn display(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// This crate's directory: `cargo test` runs with it as the current
/// directory, which is what relative host paths resolve against.
pub(super) fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
