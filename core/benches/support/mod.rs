//! Shared bench plumbing: alternating A/B measurement and the ratio table.
//!
//! A ratio measured once on a shared 2-core machine can swing by half (one
//! run gave keyed/unkeyed ingest 1.56, the next 1.29). So every ratio here
//! is the **median of [`ROUNDS`] rounds**; in each round A and B are timed
//! back to back, in alternating order (AB, BA, AB, …), so a noisy neighbour
//! slows both sides of the same round. The table prints the per-round spread
//! (min–max) beside the median, and the verdict is taken on the median.

#![allow(dead_code)]

use std::time::Duration;

/// Rounds per comparison (at least five, odd so the median is a round).
pub const ROUNDS: usize = 9;

/// One A/B comparison: the per-round figures of both sides.
pub struct Comparison {
    /// What is compared.
    pub label: String,
    /// Name and per-round time per operation (ns) of the numerator.
    pub a: (String, Vec<f64>),
    /// Name and per-round time per operation (ns) of the denominator.
    pub b: (String, Vec<f64>),
    /// Upper bound the median ratio should stay under, if there is one.
    pub target: Option<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

impl Comparison {
    /// Builds a comparison from per-round durations of `ops` operations.
    pub fn from_rounds(
        label: impl Into<String>,
        a: (&str, Vec<Duration>),
        b: (&str, Vec<Duration>),
        ops: u64,
        target: Option<f64>,
    ) -> Self {
        let per_op = |v: Vec<Duration>| -> Vec<f64> {
            v.into_iter()
                .map(|d| d.as_nanos() as f64 / ops as f64)
                .collect()
        };
        Self {
            label: label.into(),
            a: (a.0.to_string(), per_op(a.1)),
            b: (b.0.to_string(), per_op(b.1)),
            target,
        }
    }

    /// The per-round ratios A/B.
    pub fn ratios(&self) -> Vec<f64> {
        self.a.1.iter().zip(&self.b.1).map(|(a, b)| a / b).collect()
    }

    /// The median per-round ratio.
    pub fn ratio(&self) -> f64 {
        median(&self.ratios())
    }
}

/// Times `a` against `b`. Each closure performs its operation `n` times and
/// returns how long that took (anything it must prepare stays outside its
/// timed region). One warm-up pass each, then [`ROUNDS`] alternating rounds.
pub fn compare(
    label: impl Into<String>,
    (a_name, mut a): (&str, impl FnMut(u64) -> Duration),
    (b_name, mut b): (&str, impl FnMut(u64) -> Duration),
    n: u64,
    target: Option<f64>,
) -> Comparison {
    a(n.div_ceil(4));
    b(n.div_ceil(4));
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            ta.push(a(n));
            tb.push(b(n));
        } else {
            tb.push(b(n));
            ta.push(a(n));
        }
    }
    Comparison::from_rounds(label, (a_name, ta), (b_name, tb), n, target)
}

/// Formats nanoseconds.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints the ratio table (markdown).
pub fn print_table(title: &str, rows: &[Comparison]) {
    println!("\n## {title}\n");
    println!(
        "Each ratio is the median of {ROUNDS} alternating A/B rounds in this run; spread = min–max of the rounds.\n"
    );
    println!("| measurement | A (median) | B (median) | ratio | spread | target | verdict |");
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let ratios = r.ratios();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(0.0, f64::max);
        let ratio = r.ratio();
        let (target, verdict) = match r.target {
            Some(t) if ratio <= t => (format!("≤ {t}"), "meets target"),
            Some(t) => (format!("≤ {t}"), "MISSES target"),
            None => ("—".to_string(), "reported"),
        };
        println!(
            "| {} | {} {} | {} {} | {:.3} | {:.3}–{:.3} | {} | {} |",
            r.label,
            r.a.0,
            fmt_ns(median(&r.a.1)),
            r.b.0,
            fmt_ns(median(&r.b.1)),
            ratio,
            lo,
            hi,
            target,
            verdict
        );
    }
}
