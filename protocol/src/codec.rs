//! A tiny big-endian binary codec used by every occ wire structure and by the
//! client core's persisted state.
//!
//! Invariants:
//! - [`Reader`] never panics and never reads past its input; every failure is a
//!   [`WireError`] naming the field being read.
//! - Variable-length fields carry a `u32` length prefix and are checked against
//!   a caller-supplied maximum *before* any allocation, so a hostile length
//!   cannot make the parser allocate more than the input holds.
//! - [`Reader::finish`] rejects trailing bytes, so every structure has exactly
//!   one encoding (parse → encode is the identity on accepted input).

use crate::WireError;

/// Appends big-endian fields to a byte vector.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Wraps an existing buffer; new fields are appended to it.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends raw bytes with no length prefix (fixed-size fields).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Appends a `u32` length prefix and the bytes.
    ///
    /// Lengths above `u32::MAX` cannot occur for occ structures (all limits are
    /// far below); they are clamped by the caller's own size checks.
    pub fn var_bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(bytes)
    }

    /// Appends a presence flag (0 or 1) and, when present, the value written by `f`.
    pub fn option<T>(&mut self, v: Option<&T>, f: impl FnOnce(&mut Self, &T)) -> &mut Self {
        match v {
            None => {
                self.u8(0);
            }
            Some(v) => {
                self.u8(1);
                f(self, v);
            }
        }
        self
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes the writer and returns its bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads big-endian fields from a byte slice without ever panicking.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, positioned at its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(WireError::Truncated { field });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Reads a `u32`-length-prefixed byte string of at most `max` bytes.
    pub fn var_bytes(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], WireError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(WireError::TooLarge { field, len, max });
        }
        self.take(len, field)
    }

    /// Reads a presence flag; anything but 0 or 1 is [`WireError::Invalid`].
    pub fn flag(&mut self, field: &'static str) -> Result<bool, WireError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Invalid { field }),
        }
    }

    /// Reads an optional value written by [`Writer::option`].
    pub fn option<T>(
        &mut self,
        field: &'static str,
        f: impl FnOnce(&mut Self) -> Result<T, WireError>,
    ) -> Result<Option<T>, WireError> {
        if self.flag(field)? {
            f(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads a count that must not exceed `max` (guards loops and allocations).
    pub fn count(&mut self, field: &'static str, max: usize) -> Result<usize, WireError> {
        let n = self.u32(field)? as usize;
        if n > max {
            return Err(WireError::TooLarge { field, len: n, max });
        }
        Ok(n)
    }

    /// Checks the version byte.
    pub fn version(&mut self, supported: u8) -> Result<(), WireError> {
        let found = self.u8("version")?;
        if found != supported {
            return Err(WireError::UnsupportedVersion { found, supported });
        }
        Ok(())
    }

    /// Succeeds only if every byte has been consumed.
    pub fn finish(self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(WireError::TrailingBytes { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut w = Writer::new();
        w.u8(7).u16(513).u32(70000).u64(1 << 40).var_bytes(b"abc");
        w.option(Some(&5u32), |w, v| {
            w.u32(*v);
        });
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16("b").unwrap(), 513);
        assert_eq!(r.u32("c").unwrap(), 70000);
        assert_eq!(r.u64("d").unwrap(), 1 << 40);
        assert_eq!(r.var_bytes("e", 3).unwrap(), b"abc");
        assert_eq!(r.option("f", |r| r.u32("g")).unwrap(), Some(5));
        r.finish().unwrap();

        let mut r = Reader::new(&bytes[..2]);
        r.u8("a").unwrap();
        assert_eq!(r.u16("b"), Err(WireError::Truncated { field: "b" }));

        // A length larger than the limit is refused before reading.
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            r.var_bytes("big", 10),
            Err(WireError::TooLarge {
                len: 0xffff_ffff,
                ..
            })
        ));
        // A flag other than 0/1 is invalid.
        assert_eq!(
            Reader::new(&[2]).flag("f"),
            Err(WireError::Invalid { field: "f" })
        );
        // Trailing bytes are refused.
        let mut r = Reader::new(&[1, 2]);
        r.u8("a").unwrap();
        assert_eq!(r.finish(), Err(WireError::TrailingBytes { count: 1 }));
    }
}
