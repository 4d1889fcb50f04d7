//! Creating and removing sandbox folders.

use super::{process, Role, SandboxError};
use crate::db::Flavour;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A new, private (0700) folder in the temporary directory.
pub(crate) fn temp_dir(flavour: Flavour) -> Result<PathBuf, SandboxError> {
    for _ in 0..10 {
        let dir = std::env::temp_dir().join(format!("privfence-{}-{}", flavour.name(), process::random_alnum(8)?));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(SandboxError::io(format!("creating {}", dir.display()), e)),
        }
    }
    Err(SandboxError::io("creating a temporary sandbox folder", std::io::Error::other("ten names in a row were taken")))
}

/// Makes sure a caller-chosen folder exists and holds no sandbox yet; returns it absolute
/// (the servers get absolute paths, whatever their working directory).
pub(crate) fn prepare_dir(dir: &Path) -> Result<PathBuf, SandboxError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| SandboxError::io(format!("creating {}", dir.display()), e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| SandboxError::io(format!("resolving {}", dir.display()), e))?;
    let taken = [super::state::FILE, Role::Primary.name(), Role::Replica.name()].iter().any(|f| dir.join(f).exists());
    if taken {
        return Err(SandboxError::State {
            dir,
            detail: "a sandbox already exists here; stop and destroy it first, or pick another folder".into(),
        });
    }
    Ok(dir)
}

/// Removes a sandbox's files: the whole folder when it is temporary, otherwise only what the
/// sandbox created (server folders, state and lock files), then the folder if it is empty.
pub(crate) fn remove_files(dir: &Path, temporary: bool) -> Result<(), SandboxError> {
    let rm = |p: &Path| match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SandboxError::io(format!("removing {}", p.display()), e)),
        _ => Ok(()),
    };
    if temporary {
        return rm(dir);
    }
    for role in [Role::Primary, Role::Replica] {
        rm(&dir.join(role.name()))?;
    }
    for f in [super::state::FILE, ".cleanup.lock"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}
