//! The token key files: read with a bound, and read again on SIGHUP.

use std::path::Path;

use tether_apps::HubAuth;
use tether_auth::{KeyFile, Keys};

use crate::files::{MAX_KEY_FILE, read};

/// Key files, each with the name it is reported under (a command's
/// option, say `--jwt-secret-file`).
pub type KeyFiles = Vec<(String, KeyFile)>;

/// Reads the key files (each a regular file of at most
/// [`MAX_KEY_FILE`] bytes) into one set; an error names the file's label.
/// With the set, warnings about the files (a secret file's line ending).
///
/// # Errors
///
/// A file that cannot be read or does not parse, or keys that do not go
/// together, said with the file's label.
pub fn load_keys(files: &[(String, KeyFile)]) -> Result<(Keys, Vec<String>), String> {
    let mut keys = Vec::new();
    let mut warnings = Vec::new();
    for (label, file) in files {
        let (path, what) = match file {
            KeyFile::Secret(path) => (path, "a secret file"),
            KeyFile::Pem(path) => (path, "a public key file"),
            KeyFile::Jwks(path) => (path, "a JSON Web Key Set file"),
        };
        let contents = read(path, MAX_KEY_FILE, what).map_err(|e| format!("{label} {e}"))?;
        let set = match file {
            KeyFile::Secret(_) => {
                warnings.extend(secret_warnings(label, path, &contents));
                Keys::from_secret(&contents)
            }
            KeyFile::Pem(_) => Keys::from_pem(&contents),
            KeyFile::Jwks(_) => Keys::from_jwks(&contents),
        }
        .map_err(|e| format!("{label} {}: {e}", path.display()))?;
        keys.extend(set.keys().iter().cloned());
    }
    let keys = Keys::new(keys).map_err(|e| format!("the key files together: {e}"))?;
    Ok((keys, warnings))
}

/// What to tell about the secret file at `path` (named `label`): its
/// final line ending is not part of the secret (an issuer that signs with
/// the file's bytes as they are makes tokens that never verify), and
/// whitespace left at either end of the secret is.
pub fn secret_warnings(label: &str, path: &Path, contents: &[u8]) -> Vec<String> {
    let secret = tether_auth::secret_of_file(contents);
    let file = path.display();
    let mut warnings = Vec::new();
    if secret.len() < contents.len() {
        warnings.push(format!(
            "{label} {file} ends with a line ending, which is not part of the secret: the secret is \
             the {} bytes before it, and tokens must be signed with those (as `tether gentoken` \
             does), not with the file as it is",
            secret.len()
        ));
    }
    let space = |b: Option<&u8>| b.is_some_and(u8::is_ascii_whitespace);
    if space(secret.last()) || space(secret.first()) {
        warnings.push(format!(
            "{label} {file}: the secret begins or ends with whitespace (a space, a tab, a second \
             line ending), which is part of it"
        ));
    }
    warnings
}

/// Reads the key files again on each SIGHUP: tokens are verified with the
/// new keys from then on. Keys that cannot be loaded are logged and the
/// current ones stay.
pub(crate) fn reload_on_sighup(auth: HubAuth, files: KeyFiles) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("tether-key-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                match load_keys(&files) {
                    Ok((keys, _)) => {
                        auth.set_keys(keys);
                        log::info!("hub: token keys reloaded");
                    }
                    Err(e) => log::warn!("hub: key reload failed, the current keys stay: {e}"),
                }
            }
        })?;
    Ok(())
}
