//! Reading the files a configuration names: a configuration file, the
//! token key files, the certificate and its key. Each is read only if it
//! is a regular file, and only up to a bound: `/dev/zero` or a FIFO is an
//! error that names the file, never a read without end.

use std::io::Read;
use std::path::Path;

/// The most bytes a configuration file may have.
pub const MAX_CONFIG_FILE: u64 = 1 << 20;

/// The most bytes a PEM certificate chain or key file may have.
pub const MAX_PEM_FILE: u64 = 1 << 20;

/// The most bytes a token key file (secret, PEM, JWKS) may have: what
/// `tether-auth` reads at most.
pub const MAX_KEY_FILE: u64 = tether_auth::MAX_KEY_FILE_LEN as u64;

/// The contents of the regular file at `path`, of at most `limit` bytes;
/// `what` names it in the errors (`a configuration file`). Errors name the
/// file and, for one too large, the bound.
pub fn read(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    let file_name = path.display();
    // Looked at before it is opened: opening a FIFO would wait for a
    // writer.
    let kind = std::fs::metadata(path).map_err(|e| format!("{file_name}: cannot read it: {e}"))?;
    regular(&kind, path, what)?;
    let file = std::fs::File::open(path).map_err(|e| format!("{file_name}: cannot read it: {e}"))?;
    // And again on what was opened, in case the name changed hands since.
    let opened = file
        .metadata()
        .map_err(|e| format!("{file_name}: cannot read it: {e}"))?;
    regular(&opened, path, what)?;
    let too_large = || format!("{file_name}: larger than {limit} bytes, the most {what} may have");
    if opened.len() > limit {
        return Err(too_large());
    }
    let mut contents = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(|e| format!("{file_name}: cannot read it: {e}"))?;
    if u64::try_from(contents.len()).unwrap_or(u64::MAX) > limit {
        return Err(too_large());
    }
    Ok(contents)
}

/// [`read`], as UTF-8 text.
pub fn read_text(path: &Path, limit: u64, what: &str) -> Result<String, String> {
    String::from_utf8(read(path, limit, what)?).map_err(|e| {
        format!(
            "{}: not UTF-8 text (at byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// An error unless `metadata` is a regular file's.
fn regular(metadata: &std::fs::Metadata, path: &Path, what: &str) -> Result<(), String> {
    if metadata.is_file() {
        return Ok(());
    }
    let kind = if metadata.is_dir() {
        "a directory"
    } else {
        special_kind(metadata)
    };
    Err(format!(
        "{}: {kind}, not a regular file ({what} must be one)",
        path.display()
    ))
}

#[cfg(unix)]
fn special_kind(metadata: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = metadata.file_type();
    if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::Metadata) -> &'static str {
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, contents: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("tether-files-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn regular_files_within_the_bound_are_read() {
        let path = temp("ok", b"port = 1\n");
        assert_eq!(read(&path, 9, "a file").unwrap(), b"port = 1\n");
        let err = read(&path, 8, "a configuration file").unwrap_err();
        assert!(
            err.contains("larger than 8 bytes, the most a configuration file may have"),
            "{err}"
        );
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        let _ = std::fs::remove_file(&path);
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_directories_are_refused_unread() {
        let err = read(Path::new("/dev/zero"), MAX_CONFIG_FILE, "a configuration file").unwrap_err();
        assert_eq!(
            err,
            "/dev/zero: a character device, not a regular file (a configuration file must be one)"
        );
        let err = read(&std::env::temp_dir(), 10, "a key file").unwrap_err();
        assert!(err.contains("a directory, not a regular file"), "{err}");
        let err = read(Path::new("/nonexistent/tether.toml"), 10, "a file").unwrap_err();
        assert!(
            err.starts_with("/nonexistent/tether.toml: cannot read it"),
            "{err}"
        );
    }

    #[test]
    fn text_must_be_utf8() {
        let path = temp("latin1", b"a = \"\xe9\"\n");
        let err = read_text(&path, 100, "a file").unwrap_err();
        assert!(err.contains("not UTF-8 text (at byte 5)"), "{err}");
        let _ = std::fs::remove_file(&path);
    }
}
