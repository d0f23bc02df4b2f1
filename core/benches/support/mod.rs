//! Shared bench plumbing: a Criterion configured to write where we can read
//! it back, and a ratio table printed from the estimates of the same run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

static STARTED: OnceLock<SystemTime> = OnceLock::new();

use criterion::Criterion;

/// Criterion's output directory for this workspace.
pub fn output_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion"))
}

/// A Criterion that honours the command line and writes to [`output_dir`].
pub fn criterion() -> Criterion {
    STARTED.get_or_init(SystemTime::now);
    Criterion::default()
        .output_directory(&output_dir())
        .configure_from_args()
}

/// Mean time in nanoseconds of `group/function`, only if it ran in *this*
/// run (older estimates on disk are ignored, so every ratio compares figures
/// measured together).
pub fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let path = output_dir()
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let started = *STARTED.get()?;
    if std::fs::metadata(&path).ok()?.modified().ok()? < started {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// One row of the ratio table: `numerator / denominator` against a target.
pub struct Ratio {
    pub label: String,
    pub group: String,
    pub numerator: &'static str,
    pub denominator: &'static str,
    /// Upper bound the ratio should stay under, if there is a target.
    pub target: Option<f64>,
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints the table (markdown) for every row whose benchmarks ran.
pub fn print_ratios(title: &str, rows: &[Ratio]) {
    println!("\n## {title}\n");
    println!("| measurement | numerator | denominator | ratio | target | verdict |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        let (Some(n), Some(d)) = (
            mean_ns(&r.group, r.numerator),
            mean_ns(&r.group, r.denominator),
        ) else {
            continue;
        };
        let ratio = n / d;
        let (target, verdict) = match r.target {
            Some(t) if ratio <= t => (format!("≤ {t}"), "meets target"),
            Some(t) => (format!("≤ {t}"), "MISSES target"),
            None => ("—".to_string(), "reported"),
        };
        println!(
            "| {} | {} {} | {} {} | {:.3} | {} | {} |",
            r.label,
            r.numerator,
            fmt_ns(n),
            r.denominator,
            fmt_ns(d),
            ratio,
            target,
            verdict
        );
    }
}
