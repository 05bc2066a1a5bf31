//! `skiff doctor`: checks the host and the engine before a cluster goes
//! wrong, and the same checks at the start of `skiff create`.
//!
//! - [`host`] gathers [`Facts`] (engine info, `/proc/sys` limits, free disk
//!   and memory, whether ports are free, proxy variables): reads only;
//! - [`checks`] turns facts into [`Finding`]s, each `ok`, `warn` or `fail`
//!   with the fix as a command: pure, unit-tested;
//! - this module runs both and renders the report.
//!
//! At create only `fail` stops, and it stops before anything is made;
//! warnings are printed and the create goes on. `docs/doctor.md` lists every
//! check, its thresholds and fixes.

pub mod checks;
pub mod host;

use serde::Serialize;

use crate::config::Cluster;
use crate::engine::Engine;
use crate::ui::Ui;

pub use host::Facts;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable ID, e.g. `inotify`, `ports`.
    pub check: String,
    pub status: Status,
    pub message: String,
    /// The command (or setting) that fixes a warn or fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every finding of one run, also the `-o json` form.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The worst status of any finding.
    pub status: Status,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(findings: Vec<Finding>) -> Report {
        Report {
            status: findings
                .iter()
                .map(|f| f.status)
                .max()
                .unwrap_or(Status::Ok),
            findings,
        }
    }

    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.status == Status::Fail)
    }

    /// The text of `skiff doctor`.
    pub fn render(&self) -> String {
        let width = self
            .findings
            .iter()
            .map(|f| f.check.len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for f in &self.findings {
            out += &format!(
                "{:<4}  {:<width$}  {}\n",
                f.status.as_str(),
                f.check,
                f.message
            );
            if let Some(fix) = &f.fix {
                out += &format!("      {:<width$}  fix: {fix}\n", "");
            }
        }
        let count = |s| self.findings.iter().filter(|f| f.status == s).count();
        out += &format!(
            "\n{} ok, {} warning(s), {} failure(s)\n",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail)
        );
        out
    }
}

/// Why `skiff create` did not start: the failed checks.
#[derive(Debug, thiserror::Error)]
#[error("the host is not ready for this cluster: {}", summary(.0))]
pub struct DoctorError(pub Vec<Finding>);

fn summary(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{}: {}", f.check, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl DoctorError {
    pub fn hint(&self) -> Option<String> {
        let fixes: Vec<&str> = self.0.iter().filter_map(|f| f.fix.as_deref()).collect();
        let mut hint = String::from("nothing was created; ");
        if !fixes.is_empty() {
            hint += &format!("fix: {}; ", fixes.join("; "));
        }
        hint += "`skiff doctor` shows every check";
        Some(hint)
    }
}

/// `skiff doctor`: every check, for `config` when given.
pub async fn run(engine_host: Option<String>, config: Option<&Cluster>) -> Report {
    let engine = Engine::connect(engine_host).await;
    let facts = host::gather(
        engine.as_ref().map_err(|e| e.to_string()),
        config,
        host::Paths::from_env(),
        true,
    )
    .await;
    Report::new(checks::all(&facts))
}

/// The checks at the start of `create`: warnings are printed, failures
/// stop the create before it changes anything. The privilege probe is left
/// to the node step, which measures and falls back on its own.
pub async fn preflight(engine: &Engine, ui: &Ui, config: &Cluster) -> Result<(), DoctorError> {
    let facts = host::gather(Ok(engine), Some(config), host::Paths::from_env(), false).await;
    let report = Report::new(checks::all(&facts));
    let warnings: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.status == Status::Warn)
        .collect();
    for f in &warnings {
        ui.warn(format!("{}: {}", f.check, f.message));
    }
    if !warnings.is_empty() {
        ui.info("`skiff doctor` shows how to fix these");
    }
    let failures: Vec<Finding> = report.failures().cloned().collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(DoctorError(failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(check: &str, status: Status) -> Finding {
        Finding {
            check: check.into(),
            status,
            message: "m".into(),
            fix: (status != Status::Ok).then(|| "do it".into()),
        }
    }

    #[test]
    fn the_report_is_as_bad_as_its_worst_finding() {
        let r = Report::new(vec![finding("a", Status::Ok), finding("b", Status::Warn)]);
        assert_eq!(r.status, Status::Warn);
        assert!(r.render().contains("1 ok, 1 warning(s), 0 failure(s)"));
        assert!(r.render().contains("fix: do it"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["findings"][1]["status"], "warn");
        assert!(json["findings"][0].get("fix").is_none());
    }

    #[test]
    fn a_failure_says_nothing_was_created_and_how_to_fix() {
        let e = DoctorError(vec![finding("ports", Status::Fail)]);
        assert!(e.to_string().contains("ports: m"));
        let hint = e.hint().unwrap();
        assert!(hint.starts_with("nothing was created"), "{hint}");
        assert!(hint.contains("fix: do it"), "{hint}");
    }
}
