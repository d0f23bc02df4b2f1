//! The profile directory of `occ init`: what it may be, and undoing exactly
//! what a failed `init` made.
//!
//! `init` accepts a directory that does not exist yet (it is created, `0700`,
//! with any missing parents) or an existing *empty* one (made `0700`). A
//! non-empty directory is refused unless it is already an occ profile (then
//! `init` refuses too, naming it). If enrolment fails, `init` removes what it
//! created — the directories it made, or else only the profile's own files —
//! and nothing else, so a user's files can never be lost to a mistyped pin.

use std::path::{Path, PathBuf};

use crate::Fail;

/// The profile's own files (the store's and the CLI's key file).
const PROFILE_FILES: &[&str] = &[
    "profile.key",
    "occ.db",
    "occ.db-wal",
    "occ.db-shm",
    "occ.db-journal",
    "keycheck",
    "keycheck.new",
];
const PROFILE_DIRS: &[&str] = &["attachments"];

/// What `init` made, to undo on failure.
pub(crate) enum Made {
    /// This directory (the highest one that did not exist) and all below.
    Tree(PathBuf),
    /// Only the profile's own files inside an existing empty directory.
    Files(PathBuf),
}

pub(crate) fn is_profile(dir: &Path) -> bool {
    dir.join("profile.key").exists() || dir.join("occ.db").exists()
}

#[cfg(unix)]
fn make_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn make_private(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Checks `dir` and makes it ready for a new profile.
pub(crate) fn prepare(dir: &Path) -> Result<Made, Fail> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(Fail(format!("{} is not a directory", dir.display())));
        }
        if is_profile(dir) {
            return Err(Fail(format!(
                "{} already holds an occ profile",
                dir.display()
            )));
        }
        let mut entries = std::fs::read_dir(dir)
            .map_err(|e| Fail(format!("cannot read {}: {e}", dir.display())))?;
        if entries.next().is_some() {
            return Err(Fail(format!(
                "{} is not empty and is not an occ profile; give a new or empty directory",
                dir.display()
            )));
        }
        make_private(dir).map_err(|e| Fail(format!("cannot protect {}: {e}", dir.display())))?;
        return Ok(Made::Files(dir.to_path_buf()));
    }
    let mut highest = dir.to_path_buf();
    while let Some(parent) = highest.parent() {
        if parent.as_os_str().is_empty() || parent.exists() {
            break;
        }
        highest = parent.to_path_buf();
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Fail(format!("cannot create {}: {e}", dir.display())))?;
    Ok(Made::Tree(highest))
}

impl Made {
    /// Removes what `init` made (best effort: a failure here must not hide
    /// the failure being reported).
    pub(crate) fn undo(self) {
        match self {
            Made::Tree(top) => {
                let _ = std::fs::remove_dir_all(top);
            }
            Made::Files(dir) => {
                for f in PROFILE_FILES {
                    let _ = std::fs::remove_file(dir.join(f));
                }
                for d in PROFILE_DIRS {
                    let _ = std::fs::remove_dir_all(dir.join(d));
                }
            }
        }
    }
}
