//! Where the command-line tool keeps the server address and its API token: one small JSON
//! file in the user's configuration directory, readable by the user only (directory 0700,
//! file 0600), replaced atomically so a crash never leaves half a token behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Overrides the configuration directory (tests, several profiles).
pub const DIR_VAR: &str = "PORTCULLIS_CONFIG_DIR";
const FILE: &str = "config.json";

/// What `portcullis login` saved.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// `$PORTCULLIS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/portcullis`, else
/// `~/.config/portcullis` (empty values count as unset).
pub fn dir() -> Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = var(DIR_VAR) {
        return Ok(PathBuf::from(d));
    }
    if let Some(x) = var("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(x).join("portcullis"));
    }
    match var("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".config").join("portcullis")),
        None => bail!("cannot find your configuration directory: set HOME or {DIR_VAR}"),
    }
}

pub fn path() -> Result<PathBuf> {
    Ok(dir()?.join(FILE))
}

/// The saved login, if any.
pub fn load() -> Result<Option<Saved>> {
    let p = path()?;
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    let saved = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid portcullis configuration", p.display()))?;
    Ok(Some(saved))
}

/// Save atomically: a new file created 0600 beside the old one, synced, then renamed over
/// it. The directory is created 0700 (and tightened if it is looser).
pub fn save(saved: &Saved) -> Result<PathBuf> {
    let dir = dir()?;
    create_private_dir(&dir)?;
    let target = dir.join(FILE);
    let tmp = dir.join(format!(".{FILE}.{}.tmp", std::process::id()));
    let body = serde_json::to_vec_pretty(saved)?;
    // A leftover of a crashed run with the same process id.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> std::io::Result<()> {
        let mut f = private_file(&tmp)?;
        f.write_all(&body)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", target.display()));
    }
    Ok(target)
}

/// Forget the saved login; returns it if there was one.
pub fn remove() -> Result<Option<Saved>> {
    let saved = load()?;
    let p = path()?;
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(saved),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", p.display())),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(unix)]
fn private_file(p: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
}

#[cfg(not(unix))]
fn private_file(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p)
}
