//! Files the service makes for itself hold secrets or their hashes (the SQLite store and its
//! `-wal`/`-shm`, backups, the generated admin token): they are created readable by their
//! owner only (0600), in folders only their owner can enter when this creates them (0700),
//! whatever the process's umask, and never readable for a moment before being restricted.

use std::io::Write as _;
use std::path::Path;

/// Creates `dir` and its missing parents, each new one with mode 0700 (existing ones are left
/// as they are).
///
/// # Errors
/// A file-system failure.
pub fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates a new, empty file at `path` with mode 0600 (its folder made as
/// [`create_private_dir_all`] does). `Ok(false)` when it existed already (left untouched).
///
/// # Errors
/// A file-system failure.
pub fn create_private_file(path: &Path) -> std::io::Result<bool> {
    if let Some(parent) = path.parent() {
        create_private_dir_all(parent)?;
    }
    match private_options().open(path) {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

/// Writes `contents` to a new file at `path` with mode 0600, replacing one left there before,
/// synced to disk.
///
/// # Errors
/// A file-system failure.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        create_private_dir_all(parent)?;
    }
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = private_options().open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn private_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_and_the_folders_made_for_them_are_the_owners_only() {
        let root = std::env::temp_dir().join(format!("private-{}", uuid::Uuid::new_v4()));
        let file = root.join("a").join("b").join("store.db");
        assert!(create_private_file(&file).unwrap());
        assert!(
            !create_private_file(&file).unwrap(),
            "an existing file is left alone"
        );
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&root.join("a")), 0o700);
        assert_eq!(mode(&root.join("a").join("b")), 0o700);
        write_private(&file, b"secret").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"secret");
        assert_eq!(mode(&file), 0o600);
        std::fs::remove_dir_all(root).unwrap();
    }
}
