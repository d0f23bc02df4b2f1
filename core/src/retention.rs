//! Retention: Time To Live, read timers, the device Keep Period, trusted time
//! and the purge.
//!
//! A message's deletion deadline is
//! `min(ttl_expiry, received + keep_period, first_read + read_timer)`.
//! The store keeps the message-intrinsic part, `min(ttl_expiry, first_read +
//! read_timer)`, in an indexed `deadline_ms` column, and applies the keep period
//! (a device setting that can change) at query time against the indexed
//! `received_ms`. Every read of content filters on both against *trusted time*,
//! so expired content is never returned, even before the purge has run.
//!
//! Trusted time = max(device clock, anchor + monotonic time since the anchor),
//! where the anchor is the highest time ever observed (signed server time or
//! the persisted high-water mark). It never goes backwards: turning the device
//! clock back (while running or across a restart) revives nothing. A clock set
//! *forward* makes content expire early; for this product that is the safe way
//! to fail, and it is corrected only as real time catches up.
//!
//! Changing the keep period first purges under the old one, so lengthening it
//! cannot revive content that was already past it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// Keep period used when the device has not set one: 30 days (capped by the
/// organisation maximum).
pub const DEFAULT_KEEP_PERIOD_MS: i64 = 30 * DAY_MS;

/// A source of wall-clock and monotonic time. Injectable so tests (and the
/// demo) can turn the device clock back and forward.
pub trait Clock: Send + Sync {
    /// The device's wall clock, milliseconds since the Unix epoch. May jump.
    fn wall_ms(&self) -> i64;
    /// A monotonic clock in milliseconds; only differences are meaningful and
    /// it restarts with the process.
    fn monotonic_ms(&self) -> i64;
}

/// The real clocks.
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn monotonic_ms(&self) -> i64 {
        i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock the caller moves by hand (tests, demos). The wall clock can be set
/// anywhere; the monotonic clock only advances.
pub struct ManualClock {
    wall: AtomicI64,
    mono: AtomicI64,
}

impl ManualClock {
    /// A manual clock reading `wall_ms`.
    pub fn new(wall_ms: i64) -> Self {
        Self {
            wall: AtomicI64::new(wall_ms),
            mono: AtomicI64::new(0),
        }
    }

    /// Real time passes: both clocks advance.
    pub fn advance(&self, ms: i64) {
        self.wall.fetch_add(ms, Ordering::SeqCst);
        self.mono.fetch_add(ms.max(0), Ordering::SeqCst);
    }

    /// The user sets the device clock (monotonic time is unaffected).
    pub fn set_wall(&self, wall_ms: i64) {
        self.wall.store(wall_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn wall_ms(&self) -> i64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn monotonic_ms(&self) -> i64 {
        self.mono.load(Ordering::SeqCst)
    }
}

/// Trusted time for one open profile.
pub(crate) struct TrustedTime {
    anchor: Mutex<Anchor>,
}

#[derive(Clone, Copy)]
struct Anchor {
    at_ms: i64,
    mono_ms: i64,
}

impl TrustedTime {
    /// Starts from the persisted high-water mark.
    pub(crate) fn new(clock: &dyn Clock, high_water_ms: i64) -> Self {
        Self {
            anchor: Mutex::new(Anchor {
                at_ms: high_water_ms,
                mono_ms: clock.monotonic_ms(),
            }),
        }
    }

    /// `max(device clock, anchor + monotonic elapsed)`. When the device clock
    /// is ahead, it becomes the new anchor, so a later clock change cannot
    /// take trusted time back below anything already observed.
    pub(crate) fn now_ms(&self, clock: &dyn Clock) -> i64 {
        let mut a = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
        let mono = clock.monotonic_ms();
        let projected = a
            .at_ms
            .saturating_add(mono.saturating_sub(a.mono_ms).max(0));
        let wall = clock.wall_ms();
        if wall > projected {
            *a = Anchor {
                at_ms: wall,
                mono_ms: mono,
            };
            wall
        } else {
            projected
        }
    }

    /// Moves the anchor forward to a (verified) server time; never backwards.
    /// Returns the new trusted time.
    pub(crate) fn observe(&self, clock: &dyn Clock, server_ms: i64) -> i64 {
        let now = self.now_ms(clock);
        if server_ms > now {
            let mut a = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
            *a = Anchor {
                at_ms: server_ms,
                mono_ms: clock.monotonic_ms(),
            };
            server_ms
        } else {
            now
        }
    }
}

/// The message-intrinsic part of the deadline: `min(ttl_expiry, first_read +
/// read_timer)`.
pub fn intrinsic_deadline(
    ttl_expiry_ms: i64,
    first_read_ms: Option<i64>,
    read_timer_ms: Option<i64>,
) -> i64 {
    match (first_read_ms, read_timer_ms) {
        (Some(read), Some(timer)) => ttl_expiry_ms.min(read.saturating_add(timer)),
        _ => ttl_expiry_ms,
    }
}

/// The full deadline, as DESIGN.md section 5 states it.
pub fn deadline(
    ttl_expiry_ms: i64,
    received_ms: i64,
    keep_period_ms: i64,
    first_read_ms: Option<i64>,
    read_timer_ms: Option<i64>,
) -> i64 {
    intrinsic_deadline(ttl_expiry_ms, first_read_ms, read_timer_ms)
        .min(received_ms.saturating_add(keep_period_ms))
}

/// The effective keep period: the device setting (or the default), capped by
/// the organisation maximum.
pub fn effective_keep_period(device_ms: Option<i64>, org_max_ms: Option<i64>) -> i64 {
    let device = device_ms.unwrap_or(DEFAULT_KEEP_PERIOD_MS);
    match org_max_ms {
        Some(max) => device.min(max),
        None => device,
    }
}

/// What one purge removed (identifiers and counts only, never content), for the
/// audit trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Trusted time the purge ran at.
    pub at_ms: i64,
    /// Ids of the messages removed because their TTL or read timer passed.
    pub expired_ids: Vec<String>,
    /// Ids of the messages removed because they passed the keep period.
    pub kept_too_long_ids: Vec<String>,
    /// Ids of outgoing messages dropped from the outbox because they expired
    /// before they could be sent (each also raises `DeliveryFailed`).
    pub undelivered_ids: Vec<String>,
    /// Attachment files crypto-shredded (key deleted, file removed).
    pub attachments: u64,
}

impl PurgeReport {
    /// Total messages removed.
    pub fn messages(&self) -> u64 {
        (self.expired_ids.len() + self.kept_too_long_ids.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_the_minimum_of_its_three_parts() {
        assert_eq!(deadline(100, 0, 1000, None, None), 100);
        assert_eq!(deadline(1000, 0, 50, None, None), 50);
        assert_eq!(deadline(1000, 0, 500, Some(10), Some(20)), 30);
        assert_eq!(deadline(1000, 0, 500, Some(10), None), 500);
        assert_eq!(
            deadline(i64::MAX, i64::MAX - 1, i64::MAX, None, None),
            i64::MAX
        );
    }

    #[test]
    fn keep_period_is_capped_by_the_organisation() {
        assert_eq!(effective_keep_period(None, None), DEFAULT_KEEP_PERIOD_MS);
        assert_eq!(effective_keep_period(Some(5), Some(3)), 3);
        assert_eq!(effective_keep_period(Some(2), Some(3)), 2);
        assert_eq!(effective_keep_period(None, Some(DAY_MS)), DAY_MS);
    }

    #[test]
    fn the_clocks_read_what_they_should() {
        let sys = SystemClock::new();
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((sys.wall_ms() - real).abs() < 5_000);
        let m0 = sys.monotonic_ms();
        assert!((0..5_000).contains(&m0));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(sys.monotonic_ms() >= m0 + 20);

        let manual = ManualClock::new(10_000);
        assert_eq!((manual.wall_ms(), manual.monotonic_ms()), (10_000, 0));
        manual.advance(250);
        assert_eq!((manual.wall_ms(), manual.monotonic_ms()), (10_250, 250));
        manual.set_wall(3);
        assert_eq!((manual.wall_ms(), manual.monotonic_ms()), (3, 250));
        manual.advance(-1);
        assert_eq!((manual.wall_ms(), manual.monotonic_ms()), (2, 250));
        assert_eq!(DAY_MS, 86_400_000);
        assert_eq!(DEFAULT_KEEP_PERIOD_MS, 30 * 86_400_000);
    }

    #[test]
    fn a_purge_report_counts_both_kinds_of_removal() {
        let r = PurgeReport {
            expired_ids: vec!["a".into(), "b".into()],
            kept_too_long_ids: vec!["c".into(), "d".into(), "e".into()],
            ..PurgeReport::default()
        };
        assert_eq!(r.messages(), 5);
    }

    #[test]
    fn trusted_time_never_goes_back() {
        let clock = ManualClock::new(10_000);
        let t = TrustedTime::new(&clock, 0);
        assert_eq!(t.now_ms(&clock), 10_000);
        clock.advance(500);
        assert_eq!(t.now_ms(&clock), 10_500);
        // The user turns the clock back a long way; nothing goes back.
        clock.set_wall(1_000);
        assert_eq!(t.now_ms(&clock), 10_500);
        clock.advance(100);
        assert_eq!(t.now_ms(&clock), 10_600);
        // A restart anchors on the persisted high-water mark.
        let t2 = TrustedTime::new(&clock, 10_600);
        assert_eq!(t2.now_ms(&clock), 10_600);
        // Server time moves it forward, never back.
        assert_eq!(t2.observe(&clock, 20_000), 20_000);
        assert_eq!(t2.observe(&clock, 15_000), 20_000);
        assert_eq!(t2.observe(&clock, 20_000), 20_000);
        clock.advance(10);
        assert_eq!(t2.now_ms(&clock), 20_010);
        // The device clock running ahead becomes the anchor; set back again,
        // trusted time continues from there.
        clock.set_wall(50_000);
        assert_eq!(t2.now_ms(&clock), 50_000);
        clock.set_wall(0);
        clock.advance(5);
        assert_eq!(t2.now_ms(&clock), 50_005);
        // A device clock exactly at trusted time changes nothing.
        clock.set_wall(50_005);
        assert_eq!(t2.now_ms(&clock), 50_005);
    }
}
