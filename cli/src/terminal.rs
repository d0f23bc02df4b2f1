//! Terminal-safe text. Everything another party controls — message text,
//! thread titles, reasons and details that quote a relay or a peer — goes
//! through [`safe`] before it reaches a terminal, so it cannot move the
//! cursor, rewrite earlier lines, set the window title, ring the bell, hide
//! text, or reorder it with bidirectional overrides (CVE-2021-42574,
//! "Trojan Source"). `--json` output needs no such step for C0 controls
//! (JSON escapes them) and applies [`safe`] nowhere: a JSON consumer gets the
//! exact text.

use std::fmt::Write as _;

/// `text` with every control character (C0 but tab and, if `multiline`,
/// newline; DEL; C1), every bidirectional embedding, override or isolate,
/// and other invisible format characters replaced by a visible `\u{…}`
/// escape. A backslash stays a backslash: the escapes are for reading, not
/// for round-tripping.
pub(crate) fn safe_text(text: &str, multiline: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let keep = match c {
            '\t' => true,
            '\n' => multiline,
            c if c.is_control() => false,
            // Bidi embeddings/overrides, isolates, marks.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => false,
            '\u{061C}' => false,
            // Zero-width and other invisible format characters.
            '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' => false,
            _ => true,
        };
        if keep {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    out
}

/// One-line [`safe_text`]: a newline is escaped too.
pub(crate) fn safe(text: &str) -> String {
    safe_text(text, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_bidi_overrides_are_made_visible() {
        assert_eq!(safe("plain text, ünïcode ✓"), "plain text, ünïcode ✓");
        assert_eq!(
            safe("\u{1b}[2J\u{1b}]0;pwned\u{7}"),
            "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(safe("a\rb"), "a\\u{d}b");
        assert_eq!(safe("line\nnext"), "line\\u{a}next");
        assert_eq!(safe_text("line\nnext", true), "line\nnext");
        assert_eq!(safe("tab\tok"), "tab\tok");
        assert_eq!(safe("\u{9b}31m"), "\\u{9b}31m", "C1 CSI");
        assert_eq!(safe("\u{7f}"), "\\u{7f}");
        assert_eq!(
            safe("admin\u{202E}txt.exe"),
            "admin\\u{202e}txt.exe",
            "right-to-left override"
        );
        assert_eq!(safe("a\u{2066}b\u{2069}"), "a\\u{2066}b\\u{2069}");
        assert_eq!(safe("zero\u{200B}width"), "zero\\u{200b}width");
        assert_eq!(safe("\u{feff}bom"), "\\u{feff}bom");
    }
}
