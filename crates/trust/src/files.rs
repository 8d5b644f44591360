//! Writing keys and certificates to disk: private keys and tokens go to files only their owner
//! can read; every file is created new (an existing file is never overwritten, whatever an
//! earlier check saw) and synced before the call returns.

use std::io::Write;
use std::path::Path;

/// Creates `path` with mode 0600 and writes `bytes`; fails if the file exists.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates `path` (mode 0644: certificates and other public files) and writes `bytes`; fails if
/// the file exists, so a certificate is never replaced behind its key's back.
pub fn write_public(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Creates `dir` (and parents) with mode 0700 for the last component if it does not exist.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
