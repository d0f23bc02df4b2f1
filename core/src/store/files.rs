//! Files of a profile are private to the app's user: directories `0700`,
//! files `0600` (on Unix; elsewhere the platform's app sandbox applies). The
//! database file is created here before SQLite opens it, so its `-wal` and
//! `-shm` companions, which SQLite creates with the database's permissions,
//! are private too.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

/// Options that create a file readable and writable by its owner only.
pub(crate) fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Creates a new private file (refusing to replace one).
pub(crate) fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    private_options().create_new(true).open(path)
}

/// Opens a private file for an OS lock, creating it if missing.
pub(crate) fn lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    let f = private_options().create(true).truncate(false).open(path)?;
    f.lock()?;
    Ok(f)
}

/// Writes `bytes` to a private file (created or truncated) and syncs it.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_options().create(true).truncate(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates a private directory (and missing parents, also private).
pub(crate) fn create_private_dir_all(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}

/// Creates one private directory (its parent must exist).
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path)
}
