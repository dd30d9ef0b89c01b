//! Progress of a push on stderr. The push reports events through [`Reporter`]; [`reporter`]
//! alone decides what the user sees: bars on a terminal, one plain line per blob otherwise,
//! nothing with `-q`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Digest;
use crate::registry::BlobOutcome;

/// Events of a push, keyed by blob digest.
pub trait Reporter: Send + Sync {
    /// The push will look at these blobs (total bytes for a total bar).
    fn plan(&self, _blobs: &[(Digest, u64)]) {}
    /// Bytes already reported for this blob are being sent again.
    fn blob_restarted(&self, _digest: &Digest) {}
    /// A callback the upload calls with each number of bytes handed to the network.
    fn blob_progress_sink(&self, _digest: &Digest) -> Arc<dyn Fn(u64) + Send + Sync> {
        Arc::new(|_| {})
    }
    fn blob_finished(&self, _digest: &Digest, _size: u64, _outcome: BlobOutcome) {}
    /// The push ended (successfully or not): clear bars.
    fn finish(&self) {}
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

pub fn reporter(mode: Mode) -> Arc<dyn Reporter> {
    match mode {
        Mode::Quiet => Arc::new(Silent),
        Mode::Lines => Arc::new(Lines),
        Mode::Bars { color } => Arc::new(Bars::new(color)),
    }
}

pub struct Silent;
impl Reporter for Silent {}

/// One line per finished blob, for logs: `pushed sha256:0123456789ab 12.3 MiB`.
pub struct Lines;

impl Reporter for Lines {
    fn blob_finished(&self, digest: &Digest, size: u64, outcome: BlobOutcome) {
        let _ = writeln!(std::io::stderr().lock(), "{}", line(digest, size, outcome));
    }
}

/// Sizes as people write them: `512 B`, `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn line(digest: &Digest, size: u64, outcome: BlobOutcome) -> String {
    let verb = match outcome {
        BlobOutcome::Pushed => "pushed",
        BlobOutcome::Exists => "exists",
    };
    format!("{verb} sha256:{} {}", digest.short(), human_bytes(size))
}

/// indicatif bars: one per blob and a total, cleared at the end.
pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    style: ProgressStyle,
}

impl Bars {
    fn new(color: bool) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
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
            ProgressBar::new(0)
                .with_style(total_style)
                .with_prefix("total       "),
        );
        total.enable_steady_tick(Duration::from_millis(200));
        Bars {
            multi,
            total,
            bars: Mutex::new(HashMap::new()),
            style,
        }
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
            if outcome == BlobOutcome::Exists {
                self.total.inc(size);
                bar.set_position(size);
                bar.finish_with_message("exists");
                bar.set_style(
                    ProgressStyle::with_template("{prefix} exists")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            } else {
                bar.finish();
            }
        }
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
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(12_900_000), "12.3 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn plain_lines_name_the_verb_the_short_digest_and_the_size() {
        let d = Digest::of(b"x");
        assert_eq!(
            line(&d, 12_900_000, BlobOutcome::Pushed),
            format!("pushed sha256:{} 12.3 MiB", d.short())
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
        let d = Digest::of(b"y");
        bars.plan(&[(d.clone(), 100)]);
        (bars.blob_progress_sink(&d))(60);
        assert_eq!(bars.total.position(), 60);
        bars.blob_restarted(&d);
        assert_eq!(bars.total.position(), 0);
        bars.blob_finished(&d, 100, BlobOutcome::Exists);
        assert_eq!(bars.total.position(), 100);
        bars.finish();
    }
}
