//! Data-loss prevention on export: payment card numbers (13 to 19 digits,
//! optionally grouped by spaces or dashes, passing the Luhn check) and the
//! organisation's or the caller's own patterns (regular expressions, size
//! limited). Found matches either block the export or are replaced by
//! `[redacted:<rule>]`.
//!
//! Findings are counted per rule; the matched text never leaves this module
//! (not in errors, logs, events or the audit trail).

use regex::{Regex, RegexBuilder};

pub use occ_protocol::org::{DlpAction, DlpRules};

/// Largest compiled pattern (bytes of automaton), so a hostile or careless
/// pattern cannot exhaust memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// Most patterns in one rule set.
pub const MAX_PATTERNS: usize = 32;

/// A compiled rule set.
#[derive(Debug)]
pub struct Dlp {
    cards: bool,
    patterns: Vec<Regex>,
    action: DlpAction,
}

/// What one text held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Card numbers found.
    pub cards: u64,
    /// Pattern matches found.
    pub patterns: u64,
}

impl Findings {
    /// Any at all.
    pub fn any(&self) -> bool {
        self.cards + self.patterns > 0
    }

    /// Adds another text's findings.
    pub fn add(&mut self, other: &Findings) {
        self.cards += other.cards;
        self.patterns += other.patterns;
    }
}

/// Whether `digits` (ASCII digits) pass the Luhn check.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Byte ranges of card numbers in `text`: runs of 13 to 19 digits, single
/// spaces or dashes allowed between digits, not part of a longer run of
/// digits, passing the Luhn check.
pub fn card_numbers(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // Extend a run of digits with single separators between them.
        let start = i;
        let mut digits = Vec::with_capacity(19);
        let mut end = i;
        let mut j = i;
        while j < b.len() {
            if b[j].is_ascii_digit() {
                digits.push(b[j]);
                j += 1;
                end = j;
            } else if (b[j] == b' ' || b[j] == b'-')
                && j + 1 < b.len()
                && b[j + 1].is_ascii_digit()
                && j > start
                && b[j - 1].is_ascii_digit()
            {
                j += 1;
            } else {
                break;
            }
            if digits.len() > 19 {
                break;
            }
        }
        if (13..=19).contains(&digits.len()) && luhn(&digits) {
            found.push((start, end));
        }
        i = end.max(i + 1);
    }
    found
}

impl Dlp {
    /// Compiles `rules`; a bad or too large pattern is an error naming it.
    pub fn new(rules: &DlpRules) -> Result<Self, String> {
        if rules.patterns.len() > MAX_PATTERNS {
            return Err(format!("at most {MAX_PATTERNS} DLP patterns"));
        }
        let patterns = rules
            .patterns
            .iter()
            .enumerate()
            .map(|(n, p)| {
                RegexBuilder::new(p)
                    .size_limit(PATTERN_SIZE_LIMIT)
                    .dfa_size_limit(PATTERN_SIZE_LIMIT)
                    .build()
                    .map_err(|_| format!("DLP pattern {} is not a valid regular expression", n + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            cards: rules.card_numbers,
            patterns,
            action: rules.action,
        })
    }

    /// What to do with findings.
    pub fn action(&self) -> DlpAction {
        self.action
    }

    /// Scans `text`; returns the findings and the text with every finding
    /// replaced (the caller uses the replacement only when redacting).
    pub fn scan(&self, text: &str) -> (Findings, String) {
        let mut f = Findings::default();
        let mut out = text.to_string();
        if self.cards {
            let ranges = card_numbers(&out);
            f.cards = ranges.len() as u64;
            for (s, e) in ranges.into_iter().rev() {
                out.replace_range(s..e, "[redacted:card]");
            }
        }
        for (n, re) in self.patterns.iter().enumerate() {
            let count = re.find_iter(&out).count() as u64;
            if count > 0 {
                f.patterns += count;
                out = re
                    .replace_all(&out, format!("[redacted:pattern{}]", n + 1).as_str())
                    .into_owned();
            }
        }
        (f, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(patterns: &[&str], action: DlpAction) -> DlpRules {
        DlpRules {
            card_numbers: true,
            patterns: patterns.iter().map(|s| s.to_string()).collect(),
            action,
        }
    }

    #[test]
    fn luhn_accepts_valid_and_refuses_altered_numbers() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"4111111111111112"));
        assert!(!luhn(b"79927398710"));
        // Doubling above 9 subtracts 9 (5 → 10 → 1).
        assert!(luhn(b"59"));
        assert!(!luhn(b"58"));
    }

    #[test]
    fn finds_grouped_card_numbers_and_nothing_else() {
        let t = "card 4111 1111 1111 1111, alt 4111-1111-1111-1111 and 4111111111111111.";
        assert_eq!(card_numbers(t).len(), 3);
        // Luhn fails, too short, too long, inside a longer number.
        assert!(card_numbers("4111 1111 1111 1112").is_empty());
        assert!(card_numbers("411111111111").is_empty());
        assert!(card_numbers("41111111111111111111111").is_empty());
        assert!(card_numbers("phone 0044 20 7946 0000").is_empty());
        // Double separators break a run.
        assert!(card_numbers("4111  1111 1111 1111").is_empty());
        // The exact span: 13 and 19 digits are the bounds.
        assert_eq!(card_numbers("x 4222222222222 y"), vec![(2, 15)]);
        assert_eq!(card_numbers("4111111111111111"), vec![(0, 16)]);
        // The length bounds, each with a Luhn-valid number: 13 and 19 digits
        // are cards; 12 and 20 are not, nor are the first 19 digits of a
        // longer run.
        assert_eq!(card_numbers("4000000000006"), vec![(0, 13)]);
        assert_eq!(card_numbers("4000000000000000006"), vec![(0, 19)]);
        assert!(card_numbers("400000000002").is_empty());
        assert!(card_numbers("40000000000000000002").is_empty());
        assert!(card_numbers("40000000000000000060").is_empty());
        // A separator at the very end is not part of the number (and is
        // never read past).
        assert_eq!(card_numbers("4000000000006 "), vec![(0, 13)]);
        assert_eq!(card_numbers("4000000000006-"), vec![(0, 13)]);
        assert_eq!(card_numbers("x4000-0000-0000-6"), vec![(1, 17)]);
    }

    #[test]
    fn redacts_cards_and_patterns_and_counts_them() {
        let d = Dlp::new(&rules(&[r"CASE-\d{4}"], DlpAction::Redact)).unwrap();
        let (f, out) = d.scan("pay 4111 1111 1111 1111 for CASE-1234 and CASE-9999");
        assert_eq!(
            f,
            Findings {
                cards: 1,
                patterns: 2
            }
        );
        assert_eq!(
            out,
            "pay [redacted:card] for [redacted:pattern1] and [redacted:pattern1]"
        );
        let (f, out) = d.scan("nothing here");
        assert!(!f.any());
        assert_eq!(out, "nothing here");
        assert_eq!(d.action(), DlpAction::Redact);
    }

    #[test]
    fn bad_patterns_are_refused_by_number() {
        let e = Dlp::new(&rules(&["ok", "(unclosed"], DlpAction::Block)).unwrap_err();
        assert!(e.contains("pattern 2"));
        let huge = rules(&[r"\w{1000}\w{1000}\w{1000}"], DlpAction::Block);
        assert!(Dlp::new(&huge).is_err(), "size limit");
        let many: Vec<&str> = vec!["a"; MAX_PATTERNS + 1];
        assert!(Dlp::new(&rules(&many, DlpAction::Block)).is_err());
    }
}
