//! Terminal output: progress and messages on stderr, results on stdout.
//!
//! Each pipeline step shows an indicatif spinner while it runs and leaves one
//! line with its duration when it ends, so a slow step is visible at a
//! glance. `--quiet` silences everything but errors; `--no-color` and
//! `NO_COLOR` drop the colours; spinners only draw on a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Output settings from the global flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    pub quiet: bool,
    pub verbose: u8,
    pub color: bool,
}

impl Settings {
    /// Colour only when not disabled by flag or `NO_COLOR` and stderr is a terminal.
    pub fn resolve(quiet: bool, verbose: u8, no_color_flag: bool) -> Settings {
        let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Settings {
            quiet,
            verbose,
            color: !no_color_flag && !no_color_env && std::io::stderr().is_terminal(),
        }
    }
}

/// The shared output handle; cheap to clone into concurrent tasks.
#[derive(Clone)]
pub struct Ui {
    settings: Settings,
    multi: MultiProgress,
    warned_once: Arc<AtomicBool>,
}

impl Ui {
    pub fn new(settings: Settings) -> Ui {
        let target = if settings.quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Ui {
            settings,
            multi: MultiProgress::with_draw_target(target),
            warned_once: Arc::default(),
        }
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    pub fn multi(&self) -> &MultiProgress {
        &self.multi
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.settings.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Prints a line on stderr without tearing active spinners.
    fn line(&self, text: String) {
        if self.multi.is_hidden() {
            eprintln!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    /// Starts a step: a spinner now, a line with the duration when done.
    pub fn step(&self, name: &str) -> Step {
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template(" {spinner} {msg} {elapsed:.dim}")
                .expect("valid template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        bar.set_message(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        Step {
            ui: self.clone(),
            name: name.to_string(),
            bar,
            started: Instant::now(),
        }
    }

    pub fn info(&self, text: impl AsRef<str>) {
        if !self.settings.quiet {
            self.line(text.as_ref().to_string());
        }
    }

    pub fn debug(&self, text: impl AsRef<str>) {
        if self.settings.verbose > 0 && !self.settings.quiet {
            self.line(self.paint("2", text.as_ref()));
        }
    }

    /// A warning: shown even with `--quiet`, because it changes what the user gets.
    pub fn warn(&self, text: impl AsRef<str>) {
        self.line(format!(
            "{} {}",
            self.paint("33;1", "warning:"),
            text.as_ref()
        ));
    }

    /// A warning printed at most once per process.
    pub fn warn_once(&self, text: impl AsRef<str>) {
        if !self.warned_once.swap(true, Ordering::SeqCst) {
            self.warn(text);
        }
    }

    /// The final error line and its hint.
    pub fn error(&self, message: &str, hint: Option<&str>) {
        self.line(format!("{} {message}", self.paint("31;1", "error:")));
        if let Some(hint) = hint {
            self.line(format!("{} {hint}", self.paint("36", "hint:")));
        }
    }

    /// A progress bar for byte transfers (pulls, image loads).
    pub fn bytes_bar(&self, label: &str, total: u64) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                " {prefix:20} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(label.to_string());
        bar
    }
}

/// A running step; finish it with [`Step::done`] or [`Step::fail`].
pub struct Step {
    ui: Ui,
    name: String,
    bar: ProgressBar,
    started: Instant,
}

impl Step {
    /// Updates the spinner text, e.g. with which nodes are still pending.
    pub fn progress(&self, detail: impl AsRef<str>) {
        self.bar
            .set_message(format!("{} ({})", self.name, detail.as_ref()));
    }

    pub fn done(self) {
        let elapsed = self.started.elapsed();
        self.bar.finish_and_clear();
        if !self.ui.settings.quiet {
            let mark = self.ui.paint("32", "✓");
            self.ui.line(format!(
                " {mark} {} {}",
                self.name,
                self.ui.paint("2", &format_duration(elapsed))
            ));
        }
    }

    pub fn fail(self) {
        let elapsed = self.started.elapsed();
        self.bar.finish_and_clear();
        if !self.ui.settings.quiet {
            let mark = self.ui.paint("31", "✗");
            self.ui.line(format!(
                " {mark} {} {}",
                self.name,
                self.ui.paint("2", &format_duration(elapsed))
            ));
        }
    }
}

/// `0.42s`, `12.3s`, `2m05s`: precise where it matters, short where it does not.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.2}s")
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_short_and_precise() {
        assert_eq!(format_duration(Duration::from_millis(420)), "0.42s");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
