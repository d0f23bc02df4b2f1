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
//! where the anchor is the highest time ever observed (an adopted signed
//! server time, the persisted high-water mark, or — within the same boot —
//! the persisted trusted time at boot plus the time since boot). It never
//! goes backwards: turning the device clock back (while running, across a
//! restart, or while the app was closed within a boot) revives nothing. A
//! clock set *forward* makes content expire early; for this product that is
//! the safe way to fail, and it is corrected only as real time catches up.
//!
//! Signed server times are bounded (see [`ServerTime`]): a lead of up to 10
//! minutes is adopted at once; a larger one only when a second signed time,
//! a minute or more later by the monotonic clock, continues the same story;
//! nothing beyond the year 3000 is believed. One forged or buggy answer can
//! therefore neither purge a device nor expire new messages on arrival, and
//! all deadline arithmetic saturates or is checked. *Deviation from
//! DESIGN.md*, which adopts any later signed time at once: a relay that keeps
//! a consistent story across two sessions can still move time forward — an
//! availability attack it could mount anyway by withholding messages — but
//! never backward.
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

/// Time since the device booted (suspend included) and which boot it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootTime {
    /// Identifies this boot (changes at every boot).
    pub id: String,
    /// Milliseconds since that boot, suspended time included.
    pub elapsed_ms: i64,
}

/// A source of wall-clock, monotonic and boot time. Injectable so tests (and
/// the demo) can turn the device clock back and forward, and reboot.
pub trait Clock: Send + Sync {
    /// The device's wall clock, milliseconds since the Unix epoch. May jump.
    fn wall_ms(&self) -> i64;
    /// A monotonic clock in milliseconds; only differences are meaningful and
    /// it restarts with the process.
    fn monotonic_ms(&self) -> i64;
    /// Time since boot, if the platform tells it; it keeps counting while
    /// the app is closed, so time spent closed is not lost within a boot.
    fn boot(&self) -> Option<BootTime> {
        None
    }
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

    /// Linux and Android: `/proc/sys/kernel/random/boot_id` and
    /// `/proc/uptime` (which counts suspended time). Elsewhere (iOS) none:
    /// the persisted high-water mark and the relay's signed time remain.
    fn boot(&self) -> Option<BootTime> {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        let secs: f64 = uptime.split_whitespace().next()?.parse().ok()?;
        Some(BootTime {
            id: id.trim().to_string(),
            elapsed_ms: (secs * 1000.0) as i64,
        })
    }
}

/// A clock the caller moves by hand (tests, demos). The wall clock can be set
/// anywhere; the monotonic and boot clocks only advance; [`ManualClock::reboot`]
/// starts a new boot.
pub struct ManualClock {
    wall: AtomicI64,
    mono: AtomicI64,
    boot_elapsed: AtomicI64,
    boot_count: AtomicI64,
}

impl ManualClock {
    /// A manual clock reading `wall_ms`, one hour after boot.
    pub fn new(wall_ms: i64) -> Self {
        Self {
            wall: AtomicI64::new(wall_ms),
            mono: AtomicI64::new(0),
            boot_elapsed: AtomicI64::new(3_600_000),
            boot_count: AtomicI64::new(1),
        }
    }

    /// Real time passes: every clock advances.
    pub fn advance(&self, ms: i64) {
        self.wall.fetch_add(ms, Ordering::SeqCst);
        self.mono.fetch_add(ms.max(0), Ordering::SeqCst);
        self.boot_elapsed.fetch_add(ms.max(0), Ordering::SeqCst);
    }

    /// The device restarts: a new boot, counted from zero.
    pub fn reboot(&self) {
        self.boot_count.fetch_add(1, Ordering::SeqCst);
        self.boot_elapsed.store(0, Ordering::SeqCst);
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

    fn boot(&self) -> Option<BootTime> {
        Some(BootTime {
            id: format!("manual-boot-{}", self.boot_count.load(Ordering::SeqCst)),
            elapsed_ms: self.boot_elapsed.load(Ordering::SeqCst),
        })
    }
}

/// Largest lead over the device's own estimate that a signed server time may
/// have and be adopted at once: 10 minutes.
pub const MAX_UNCORROBORATED_STEP_MS: i64 = 10 * 60 * 1000;
/// A larger lead is adopted only when a second signed time, at least this
/// much later by the monotonic clock, tells the same story.
pub const CORROBORATION_DELAY_MS: i64 = 60 * 1000;
/// How closely the second signed time must agree with the first's projection.
pub const CORROBORATION_TOLERANCE_MS: i64 = 5 * 1000;
/// No time beyond the year 3000 is believed from anyone.
pub const MAX_PLAUSIBLE_MS: i64 = 32_503_680_000_000;

/// What became of a signed server time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerTime {
    /// Not ahead of trusted time: nothing changed.
    Behind,
    /// Ahead by less than [`MAX_UNCORROBORATED_STEP_MS`]: adopted.
    Adopted,
    /// Far ahead, but a second signed time confirmed the first: adopted.
    Corroborated,
    /// Far ahead and not (yet) confirmed: not adopted; the lead is reported.
    Held {
        /// How far ahead of trusted time it was, ms.
        lead_ms: i64,
    },
}

/// Trusted time for one open profile.
///
/// `now = max(device clock, anchor + monotonic elapsed)`, never going back.
/// The anchor starts at the persisted high-water mark, or — within the same
/// boot — at the persisted "trusted time at boot" plus the boot clock, so
/// time spent with the app closed is counted even if the device clock was
/// turned back meanwhile.
///
/// Signed server times move it forward, with a bound: a lead of up to
/// [`MAX_UNCORROBORATED_STEP_MS`] is adopted at once (clocks drift, phones
/// are switched off); a larger lead is held until a second signed time,
/// received at least [`CORROBORATION_DELAY_MS`] later by the monotonic clock,
/// agrees with it within [`CORROBORATION_TOLERANCE_MS`]. One bad answer can
/// therefore never purge a device's messages or expire new ones on arrival;
/// a relay must keep a consistent story across two sessions, and the jump is
/// reported either way. Nothing beyond [`MAX_PLAUSIBLE_MS`] is believed.
pub(crate) struct TrustedTime {
    state: Mutex<State>,
}

struct State {
    anchor: Anchor,
    claim: Option<Anchor>,
}

#[derive(Clone, Copy)]
struct Anchor {
    at_ms: i64,
    mono_ms: i64,
}

impl Anchor {
    fn project(&self, mono: i64) -> i64 {
        self.at_ms
            .saturating_add(mono.saturating_sub(self.mono_ms).max(0))
    }
}

impl TrustedTime {
    /// Starts from the persisted high-water mark and, if `boot_base` (the
    /// trusted time at the start of a boot) belongs to the current boot,
    /// from that plus the time since boot.
    pub(crate) fn new(
        clock: &dyn Clock,
        high_water_ms: i64,
        boot_base: Option<(&str, i64)>,
    ) -> Self {
        let mut start = high_water_ms;
        if let (Some((id, base)), Some(boot)) = (boot_base, clock.boot())
            && boot.id == id
        {
            start = start.max(base.saturating_add(boot.elapsed_ms));
        }
        Self {
            state: Mutex::new(State {
                anchor: Anchor {
                    at_ms: start.min(MAX_PLAUSIBLE_MS),
                    mono_ms: clock.monotonic_ms(),
                },
                claim: None,
            }),
        }
    }

    /// `max(device clock, anchor + monotonic elapsed)`. When the device clock
    /// is ahead, it becomes the new anchor, so a later clock change cannot
    /// take trusted time back below anything already observed.
    pub(crate) fn now_ms(&self, clock: &dyn Clock) -> i64 {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mono = clock.monotonic_ms();
        let projected = s.anchor.project(mono);
        let wall = clock.wall_ms().min(MAX_PLAUSIBLE_MS);
        if wall > projected {
            s.anchor = Anchor {
                at_ms: wall,
                mono_ms: mono,
            };
            wall
        } else {
            projected
        }
    }

    /// Considers a verified server time (see the type's documentation).
    pub(crate) fn observe(&self, clock: &dyn Clock, server_ms: i64) -> ServerTime {
        let now = self.now_ms(clock);
        let mono = clock.monotonic_ms();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if server_ms <= now {
            return ServerTime::Behind;
        }
        let adopt = |s: &mut State| {
            s.anchor = Anchor {
                at_ms: server_ms,
                mono_ms: mono,
            };
            s.claim = None;
        };
        let lead = server_ms.saturating_sub(now);
        if server_ms > MAX_PLAUSIBLE_MS {
            return ServerTime::Held { lead_ms: lead };
        }
        if lead <= MAX_UNCORROBORATED_STEP_MS {
            adopt(&mut s);
            return ServerTime::Adopted;
        }
        if let Some(claim) = s.claim
            && mono.saturating_sub(claim.mono_ms) >= CORROBORATION_DELAY_MS
            && claim.project(mono).abs_diff(server_ms) <= CORROBORATION_TOLERANCE_MS.unsigned_abs()
        {
            adopt(&mut s);
            return ServerTime::Corroborated;
        }
        s.claim = Some(Anchor {
            at_ms: server_ms,
            mono_ms: mono,
        });
        ServerTime::Held { lead_ms: lead }
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
    /// Relay ids of push prompts that lapsed unanswered (their notice
    /// expired): their notifications must go.
    pub lapsed_prompts: Vec<String>,
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
        let t = TrustedTime::new(&clock, 0, None);
        assert_eq!(t.now_ms(&clock), 10_000);
        clock.advance(500);
        assert_eq!(t.now_ms(&clock), 10_500);
        // The user turns the clock back a long way; nothing goes back.
        clock.set_wall(1_000);
        assert_eq!(t.now_ms(&clock), 10_500);
        clock.advance(100);
        assert_eq!(t.now_ms(&clock), 10_600);
        // A restart anchors on the persisted high-water mark.
        let t2 = TrustedTime::new(&clock, 10_600, None);
        assert_eq!(t2.now_ms(&clock), 10_600);
        // Server time moves it forward, never back.
        assert_eq!(t2.observe(&clock, 20_000), ServerTime::Adopted);
        assert_eq!(t2.now_ms(&clock), 20_000);
        assert_eq!(t2.observe(&clock, 15_000), ServerTime::Behind);
        assert_eq!(t2.observe(&clock, 20_000), ServerTime::Behind);
        assert_eq!(t2.now_ms(&clock), 20_000);
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

    #[test]
    fn boot_clocks_count_and_restart() {
        let sys = SystemClock::new();
        #[cfg(target_os = "linux")]
        assert!(sys.boot().is_some(), "Linux tells the boot clock");
        if let Some(b) = sys.boot() {
            assert!(!b.id.is_empty());
            assert!(b.elapsed_ms > 0);
            std::thread::sleep(std::time::Duration::from_millis(20));
            let later = sys.boot().unwrap();
            assert_eq!(later.id, b.id);
            assert!(later.elapsed_ms >= b.elapsed_ms + 10);
        }
        let manual = ManualClock::new(0);
        let b1 = manual.boot().unwrap();
        assert_eq!(b1.elapsed_ms, 3_600_000);
        manual.advance(1_000);
        manual.advance(-5_000);
        assert_eq!(manual.boot().unwrap().elapsed_ms, 3_601_000);
        manual.reboot();
        let b2 = manual.boot().unwrap();
        assert_ne!(b2.id, b1.id);
        assert_eq!(b2.elapsed_ms, 0);
    }

    #[test]
    fn a_small_lead_is_adopted_a_large_one_is_held() {
        let clock = ManualClock::new(1_000_000);
        let t = TrustedTime::new(&clock, 0, None);
        let step = MAX_UNCORROBORATED_STEP_MS;
        assert_eq!(t.observe(&clock, 1_000_000 + step), ServerTime::Adopted);
        assert_eq!(t.now_ms(&clock), 1_000_000 + step);
        let now = t.now_ms(&clock);
        assert_eq!(
            t.observe(&clock, now + step + 1),
            ServerTime::Held { lead_ms: step + 1 }
        );
        assert_eq!(t.now_ms(&clock), now, "a held time is not adopted");
        // Nothing beyond the plausible bound, however often it is told.
        assert!(matches!(
            t.observe(&clock, i64::MAX),
            ServerTime::Held { .. }
        ));
        clock.advance(CORROBORATION_DELAY_MS);
        assert!(matches!(
            t.observe(&clock, i64::MAX),
            ServerTime::Held { .. }
        ));
        assert!(t.now_ms(&clock) < MAX_PLAUSIBLE_MS);
        // Exactly the bound is still plausible.
        let edge = ManualClock::new(MAX_PLAUSIBLE_MS - 1_000);
        let te = TrustedTime::new(&edge, 0, None);
        assert_eq!(te.observe(&edge, MAX_PLAUSIBLE_MS), ServerTime::Adopted);
        // The documented bounds.
        assert_eq!(
            (
                MAX_UNCORROBORATED_STEP_MS,
                CORROBORATION_DELAY_MS,
                CORROBORATION_TOLERANCE_MS
            ),
            (600_000, 60_000, 5_000)
        );
        // A device clock beyond it is clamped too.
        clock.set_wall(i64::MAX);
        assert_eq!(t.now_ms(&clock), MAX_PLAUSIBLE_MS);
    }

    #[test]
    fn a_large_lead_needs_a_consistent_second_answer_a_minute_later() {
        let clock = ManualClock::new(1_000_000);
        let t = TrustedTime::new(&clock, 0, None);
        let year = 365 * DAY_MS;
        let claim = 1_000_000 + year;
        assert!(matches!(t.observe(&clock, claim), ServerTime::Held { .. }));
        // Too soon: still held, and it becomes the new claim.
        clock.advance(CORROBORATION_DELAY_MS - 1);
        let c1 = claim + CORROBORATION_DELAY_MS - 1;
        assert!(matches!(t.observe(&clock, c1), ServerTime::Held { .. }));
        // A minute after that claim, but a story that does not add up.
        clock.advance(CORROBORATION_DELAY_MS);
        let projected = c1 + CORROBORATION_DELAY_MS;
        let off = projected + CORROBORATION_TOLERANCE_MS + 1;
        assert!(matches!(t.observe(&clock, off), ServerTime::Held { .. }));
        assert!(t.now_ms(&clock) < claim);
        // The next answer agrees (within tolerance) with the previous claim.
        clock.advance(CORROBORATION_DELAY_MS);
        let agree = off + CORROBORATION_DELAY_MS - CORROBORATION_TOLERANCE_MS;
        assert_eq!(t.observe(&clock, agree), ServerTime::Corroborated);
        assert_eq!(t.now_ms(&clock), agree);
        // And the pending claim is gone: another far jump starts over.
        assert!(matches!(
            t.observe(&clock, agree + year),
            ServerTime::Held { .. }
        ));
        clock.advance(CORROBORATION_DELAY_MS);
        let agree2 = agree + year + CORROBORATION_DELAY_MS + CORROBORATION_TOLERANCE_MS;
        assert_eq!(t.observe(&clock, agree2), ServerTime::Corroborated);
    }

    #[test]
    fn time_closed_within_a_boot_is_counted() {
        let clock = ManualClock::new(10_000_000);
        let boot = clock.boot().unwrap();
        let t = TrustedTime::new(&clock, 0, None);
        let base = t.now_ms(&clock) - boot.elapsed_ms;
        // The app closes; an hour passes; the clock is set back a day.
        clock.advance(3_600_000);
        clock.set_wall(10_000_000 - DAY_MS);
        let reopened = TrustedTime::new(&clock, 10_000_000, Some((&boot.id, base)));
        assert_eq!(reopened.now_ms(&clock), 10_000_000 + 3_600_000);
        // A base from another boot is ignored: only the high-water mark.
        clock.reboot();
        let other = TrustedTime::new(&clock, 10_000_000, Some((&boot.id, base)));
        assert_eq!(other.now_ms(&clock), 10_000_000);
        // An absurd base is clamped.
        let b = clock.boot().unwrap();
        let absurd = TrustedTime::new(&clock, 0, Some((&b.id, i64::MAX)));
        assert_eq!(absurd.now_ms(&clock), MAX_PLAUSIBLE_MS);
    }
}
