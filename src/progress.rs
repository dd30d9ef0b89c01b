//! The push's one voice on stderr. The push reports progress and warnings through
//! [`Reporter`]; [`reporter`] alone decides what the user sees: bars on a terminal, one plain
//! line per blob otherwise, nothing but warnings with `-q`. Warnings go through the same
//! reporter, which takes the bars off the screen while it prints them.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;

/// A blob that is at the destination now, under the digest its bytes hash to.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub digest: Digest,
    pub size: u64,
    pub outcome: BlobOutcome,
}

/// What happened to a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    Pushed,
    Exists,
    /// Mounted from another repository of the same registry: no byte sent.
    Mounted,
    /// Downloaded by a pull and written to its destination.
    Pulled,
}

/// Events of a push, keyed by blob digest.
pub trait Reporter: Send + Sync {
    /// The push will look at these blobs (total bytes for a total bar).
    fn plan(&self, _blobs: &[(Digest, u64)]) {}
    /// The push will send about this many bytes in all (a source that knows only its total,
    /// such as an engine image); replaces the total of [`plan`](Self::plan).
    fn plan_total(&self, _bytes: u64) {}
    /// A callback for the bytes of a blob whose digest is known only once it is read.
    fn unnamed_progress_sink(&self) -> Arc<dyn Fn(u64) + Send + Sync> {
        Arc::new(|_| {})
    }
    /// Bytes already reported for this blob are being sent again.
    fn blob_restarted(&self, _digest: &Digest) {}
    /// A callback the upload calls with each number of bytes handed to the network.
    fn blob_progress_sink(&self, _digest: &Digest) -> Arc<dyn Fn(u64) + Send + Sync> {
        Arc::new(|_| {})
    }
    fn blob_finished(&self, _digest: &Digest, _size: u64, _outcome: BlobOutcome) {}
    /// The push ended (successfully or not): clear bars.
    fn finish(&self) {}
    /// A `warning:` line for the user.
    fn warn(&self, message: &str);
    /// A plain line for the user, not shown with `-q`.
    fn note(&self, _message: &str) {}
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Lines,
    Bars { color: bool },
}

impl Mode {
    /// Bars only on a terminal; `-q` silences everything but the result.
    pub fn choose(quiet: bool, color: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars { color }
        } else {
            Mode::Lines
        }
    }
}

pub fn reporter(mode: Mode, color: bool) -> Arc<dyn Reporter> {
    match mode {
        Mode::Quiet => Arc::new(Silent { color }),
        Mode::Lines => Arc::new(Lines { color }),
        Mode::Bars { color } => Arc::new(Bars::new(color)),
    }
}

/// `warning: ...` on stderr, the warning's word in yellow with colour.
pub fn warning_line(message: &str, color: bool) -> String {
    let message = crate::text::escape_controls(message);
    if color {
        format!("\x1b[1;33mwarning:\x1b[0m {message}")
    } else {
        format!("warning: {message}")
    }
}

fn print_warning(message: &str, color: bool) {
    let _ = writeln!(std::io::stderr().lock(), "{}", warning_line(message, color));
}

/// Nothing but warnings (`-q`).
#[derive(Default)]
pub struct Silent {
    pub color: bool,
}

impl Reporter for Silent {
    fn warn(&self, message: &str) {
        print_warning(message, self.color);
    }
}

/// One line per finished blob, for logs: `pushed sha256:0123456789ab 12.30 MiB`.
pub struct Lines {
    color: bool,
}

impl Reporter for Lines {
    fn blob_finished(&self, digest: &Digest, size: u64, outcome: BlobOutcome) {
        let _ = writeln!(std::io::stderr().lock(), "{}", line(digest, size, outcome));
    }

    fn warn(&self, message: &str) {
        print_warning(message, self.color);
    }

    fn note(&self, message: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{message}");
    }
}

pub fn line(digest: &Digest, size: u64, outcome: BlobOutcome) -> String {
    let verb = match outcome {
        BlobOutcome::Pushed => "pushed",
        BlobOutcome::Exists => "exists",
        BlobOutcome::Mounted => "mounted",
        BlobOutcome::Pulled => "pulled",
    };
    format!("{verb} sha256:{} {}", digest.short(), HumanBytes(size))
}

/// indicatif bars: one per blob and a total, cleared at the end.
pub struct Bars {
    color: bool,
    multi: MultiProgress,
    total: ProgressBar,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    style: ProgressStyle,
    shown: std::sync::Once,
}

impl Bars {
    fn new(color: bool) -> Self {
        // Hidden until the push has a plan: a password prompt asked before it (`--src-creds
        // USER`) would be drawn over by the bars' redraw.
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        let (bar, total) = if color {
            (
                "{prefix:.cyan} [{bar:30.green/white}] {bytes}/{total_bytes} {bytes_per_sec}",
                "{prefix:.bold} [{bar:30.green/white}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
            )
        } else {
            (
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}",
            )
        };
        let style = ProgressStyle::with_template(bar)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let total_style = ProgressStyle::with_template(total)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let total = multi.add(
            ProgressBar::no_length()
                .with_style(total_style)
                .with_prefix("total       "),
        );
        Bars {
            color,
            multi,
            total,
            bars: Mutex::new(HashMap::new()),
            style,
            shown: std::sync::Once::new(),
        }
    }

    /// Starts drawing, once: when the push knows what it will send, after any question asked.
    fn show(&self) {
        self.shown.call_once(|| {
            self.multi.set_draw_target(ProgressDrawTarget::stderr());
            self.total.enable_steady_tick(Duration::from_millis(200));
        });
    }

    fn bar(&self, digest: &Digest) -> Option<ProgressBar> {
        self.bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }
}

impl Reporter for Bars {
    fn plan(&self, blobs: &[(Digest, u64)]) {
        self.show();
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for (digest, size) in blobs {
            let bar = self.multi.insert_before(
                &self.total,
                ProgressBar::new(*size)
                    .with_style(self.style.clone())
                    .with_prefix(digest.short().to_string()),
            );
            bars.insert(digest.clone(), bar);
        }
        self.total.set_length(blobs.iter().map(|(_, s)| s).sum());
    }

    fn plan_total(&self, bytes: u64) {
        self.show();
        self.total.set_length(bytes);
    }

    fn unnamed_progress_sink(&self) -> Arc<dyn Fn(u64) + Send + Sync> {
        let total = self.total.clone();
        Arc::new(move |n| total.inc(n))
    }

    fn blob_restarted(&self, digest: &Digest) {
        if let Some(bar) = self.bar(digest) {
            self.total
                .set_position(self.total.position().saturating_sub(bar.position()));
            bar.set_position(0);
        }
    }

    fn blob_progress_sink(&self, digest: &Digest) -> Arc<dyn Fn(u64) + Send + Sync> {
        let bar = self.bar(digest);
        let total = self.total.clone();
        Arc::new(move |n| {
            if let Some(bar) = &bar {
                bar.inc(n);
            }
            total.inc(n);
        })
    }

    fn blob_finished(&self, digest: &Digest, size: u64, outcome: BlobOutcome) {
        if let Some(bar) = self.bar(digest) {
            if !matches!(outcome, BlobOutcome::Pushed | BlobOutcome::Pulled) {
                let verb = if outcome == BlobOutcome::Mounted {
                    "mounted"
                } else {
                    "exists"
                };
                self.total.inc(size);
                bar.set_position(size);
                bar.finish_with_message(verb);
                bar.set_style(
                    ProgressStyle::with_template(&format!("{{prefix}} {verb}"))
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            } else {
                bar.finish();
            }
        }
    }

    fn warn(&self, message: &str) {
        self.multi.suspend(|| print_warning(message, self.color));
    }

    fn finish(&self) {
        for bar in self.bars.lock().unwrap_or_else(|p| p.into_inner()).values() {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(HumanBytes(512).to_string(), "512 B");
        assert_eq!(HumanBytes(12_900_000).to_string(), "12.30 MiB");
        assert_eq!(HumanBytes(3 << 30).to_string(), "3.00 GiB");
    }

    #[test]
    fn warnings_are_one_line_with_colour_only_when_asked() {
        assert_eq!(warning_line("careful", false), "warning: careful");
        assert_eq!(
            warning_line("careful", true),
            "\x1b[1;33mwarning:\x1b[0m careful"
        );
    }

    #[test]
    fn plain_lines_name_the_verb_the_short_digest_and_the_size() {
        let d = Digest::of(b"x");
        assert_eq!(
            line(&d, 12_900_000, BlobOutcome::Pushed),
            format!("pushed sha256:{} 12.30 MiB", d.short())
        );
        assert!(line(&d, 5, BlobOutcome::Exists).starts_with("exists sha256:"));
    }

    #[test]
    fn quiet_wins() {
        assert_eq!(Mode::choose(true, true), Mode::Quiet);
    }

    #[test]
    fn bars_track_restarts_without_a_terminal() {
        let bars = Bars::new(false);
        // Until the push knows its size, the total has none: an empty bar, not a full 0/0 one.
        assert_eq!(bars.total.length(), None);
        let d = Digest::of(b"y");
        bars.plan(&[(d.clone(), 100)]);
        assert_eq!(bars.total.length(), Some(100));
        (bars.blob_progress_sink(&d))(60);
        assert_eq!(bars.total.position(), 60);
        bars.blob_restarted(&d);
        assert_eq!(bars.total.position(), 0);
        bars.blob_finished(&d, 100, BlobOutcome::Exists);
        assert_eq!(bars.total.position(), 100);
        bars.finish();
    }
}
