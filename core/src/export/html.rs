//! The export's readable page: one self-contained HTML file (no script, no
//! remote resource) listing the messages oldest first, with links to the
//! attachments in the folder. Everything from a message is escaped.

use std::fmt::Write as _;

use super::Record;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(ms: i64) -> String {
    // UTC, `YYYY-MM-DD HH:MM:SS`, from days since the epoch (civil calendar).
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The page for `records` (oldest first).
pub(crate) fn render(
    title: &str,
    user: &str,
    device: &str,
    created_ms: i64,
    records: &[Record],
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'\">\
         <title>{t}</title><style>body{{font-family:sans-serif;max-width:50em;margin:auto}}\
         .m{{border-bottom:1px solid #ccc;padding:.5em 0}}.h{{color:#555;font-size:.9em}}\
         pre{{white-space:pre-wrap;font-family:inherit}}</style></head><body>\n\
         <h1>{t}</h1>\n<p class=\"h\">Exported by {u} (device {d}) at {c}. \
         Check it with <code>occ export verify</code>: manifest.json lists the SHA-256 of every file \
         and manifest.sig is the device's signature.</p>\n",
        t = escape(title),
        u = escape(user),
        d = escape(device),
        c = time(created_ms),
    );
    for r in records {
        let _ = write!(
            h,
            "<div class=\"m\"><div class=\"h\">{s} &middot; {t}{o}</div><pre>{b}</pre>",
            s = escape(&r.sender),
            t = time(r.sent_ms),
            o = if r.outgoing { " &middot; sent" } else { "" },
            b = escape(&r.text),
        );
        if let Some(a) = &r.attachment {
            match &a.path {
                Some(p) => {
                    let _ = write!(
                        h,
                        "<p>&#128206; <a href=\"{p}\">{n}</a> ({m}, {z} bytes)</p>",
                        p = escape(p),
                        n = escape(&a.name),
                        m = escape(&a.mime),
                        z = a.size
                    );
                }
                None => {
                    let _ = write!(
                        h,
                        "<p>&#128206; {n} ({m}, {z} bytes) — not downloaded, not included</p>",
                        n = escape(&a.name),
                        m = escape(&a.mime),
                        z = a.size
                    );
                }
            }
        }
        h.push_str("</div>\n");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_formats_times() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_800_000_000_000), "2027-01-15 08:00:00 UTC");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
