//! Where an export's files go: straight into the folder, or into one tar
//! archive streamed through an `age` encryptor (`export.tar.age`), so no
//! readable copy ever touches the disk. Both hash what they write, for the
//! manifest.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::manifest::FileEntry;
use crate::error::{Error, Result};

/// Fills one file of the export.
pub(crate) type Fill<'a> = &'a mut dyn FnMut(&mut dyn Write) -> Result<()>;

/// A destination for the export's files.
pub(crate) trait Sink {
    /// Adds `path` (exactly `size` bytes, written by `fill`).
    fn add(&mut self, path: &str, size: u64, fill: Fill<'_>) -> Result<()>;
    /// What was added.
    fn entries(&self) -> &[FileEntry];
}

/// Counts and hashes what passes through.
pub(crate) struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Hashing<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }

    pub(crate) fn finish(self) -> (W, u64, String) {
        (self.inner, self.len, hex::encode(self.hash.finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) use crate::error::io_error as io;

fn size_mismatch(path: &str) -> Error {
    Error::Internal {
        reason: format!("{path} changed size while it was exported"),
    }
}

/// Files written into the export folder.
pub(crate) struct DirSink {
    dir: PathBuf,
    entries: Vec<FileEntry>,
}

impl DirSink {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
        }
    }
}

impl Sink for DirSink {
    fn add(&mut self, path: &str, size: u64, fill: Fill<'_>) -> Result<()> {
        let full = self.dir.join(path);
        if let Some(parent) = full.parent() {
            crate::store::files::create_private_dir_all(parent)
                .map_err(io("create the export folder", parent))?;
        }
        let f = crate::store::files::create_new_private(&full)
            .map_err(io("write the export", &full))?;
        let mut w = Hashing::new(std::io::BufWriter::with_capacity(1 << 16, f));
        fill(&mut w)?;
        let (buf, len, sha256) = w.finish();
        let f = buf
            .into_inner()
            .map_err(|e| io("write the export", &full)(e.into_error()))?;
        f.sync_all().map_err(io("write the export", &full))?;
        if len != size {
            return Err(size_mismatch(path));
        }
        self.entries.push(FileEntry {
            path: path.to_string(),
            size,
            sha256,
        });
        Ok(())
    }

    fn entries(&self) -> &[FileEntry] {
        &self.entries
    }
}

/// Files written as entries of a tar stream.
pub(crate) struct TarSink<W: Write> {
    out: W,
    mtime: u64,
    entries: Vec<FileEntry>,
}

impl<W: Write> TarSink<W> {
    pub(crate) fn new(out: W, created_ms: i64) -> Self {
        Self {
            out,
            mtime: (created_ms.max(0) / 1000) as u64,
            entries: Vec::new(),
        }
    }

    /// Ends the archive (two zero blocks) and returns the stream.
    pub(crate) fn finish(mut self) -> Result<W> {
        self.out
            .write_all(&[0u8; 1024])
            .map_err(io("write the export", Path::new("export.tar")))?;
        Ok(self.out)
    }
}

impl<W: Write> Sink for TarSink<W> {
    fn add(&mut self, path: &str, size: u64, fill: Fill<'_>) -> Result<()> {
        let err = io("write the export", Path::new("export.tar"));
        let mut header = tar::Header::new_ustar();
        header
            .set_path(path)
            .map_err(|_| Error::invalid(format!("{path} is too long for the archive")))?;
        header.set_size(size);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        self.out.write_all(header.as_bytes()).map_err(&err)?;
        let mut w = Hashing::new(&mut self.out);
        fill(&mut w)?;
        let (_, len, sha256) = w.finish();
        if len != size {
            return Err(size_mismatch(path));
        }
        let pad = (512 - (size % 512) as usize) % 512;
        self.out.write_all(&vec![0u8; pad]).map_err(&err)?;
        self.entries.push(FileEntry {
            path: path.to_string(),
            size,
            sha256,
        });
        Ok(())
    }

    fn entries(&self) -> &[FileEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_stream_is_read_back_by_the_tar_reader() {
        let mut t = TarSink::new(Vec::new(), 1_800_000_000_000);
        t.add("a.txt", 5, &mut |w| {
            w.write_all(b"hello").map_err(io("w", Path::new("")))
        })
        .unwrap();
        t.add("dir/b.bin", 512, &mut |w| {
            w.write_all(&[7u8; 512]).map_err(io("w", Path::new("")))
        })
        .unwrap();
        assert_eq!(t.entries().len(), 2);
        let bytes = t.finish().unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.txt".to_string(), "dir/b.bin".to_string()]);
        let mut short = TarSink::new(Vec::new(), 0);
        assert!(
            short
                .add("c", 3, &mut |w| w
                    .write_all(b"ab")
                    .map_err(io("w", Path::new(""))))
                .is_err(),
            "a file shorter than announced is refused"
        );
    }
}
