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
    load_keys_read(files).map(|(keys, warnings, _)| (keys, warnings))
}

/// Keys, the warnings about their files, and each file's contents.
type Loaded = (Keys, Vec<String>, Vec<Vec<u8>>);

/// [`load_keys`], with each file's contents as read.
fn load_keys_read(files: &[(String, KeyFile)]) -> Result<Loaded, String> {
    let mut read_all = Vec::with_capacity(files.len());
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
        read_all.push(contents);
    }
    let keys = Keys::new(keys).map_err(|e| format!("the key files together: {e}"))?;
    Ok((keys, warnings, read_all))
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

/// The token key files as a reload needs them: the keys they gave (shared
/// with every loop), the files, and the bytes last loaded from each (a
/// reload that reads the same bytes changes nothing and says nothing).
pub(crate) struct KeyReload {
    auth: HubAuth,
    files: KeyFiles,
    contents: Vec<Vec<u8>>,
}

impl KeyReload {
    /// The files behind `auth`'s keys. They are read once more here, so
    /// that the keys in use and the bytes a reload compares with are of
    /// the same moment (a file rewritten since the caller loaded it is
    /// taken now); if that fails, the caller's keys stay and the next
    /// reload loads whatever the files then hold.
    pub(crate) fn new(auth: HubAuth, files: KeyFiles) -> KeyReload {
        let contents = match load_keys_read(&files) {
            Ok((keys, _, contents)) => {
                auth.set_keys(keys);
                contents
            }
            Err(_) => Vec::new(),
        };
        KeyReload {
            auth,
            files,
            contents,
        }
    }

    /// Reads every file again and, if any changed, verifies tokens with
    /// the new keys from then on: the labels of the files that changed
    /// (empty: nothing did). Keys that cannot be loaded leave the current
    /// ones in place.
    pub(crate) fn reload(&mut self) -> Result<Vec<String>, String> {
        let (keys, _, contents) = load_keys_read(&self.files)?;
        let changed: Vec<String> = self
            .files
            .iter()
            .zip(&contents)
            .enumerate()
            .filter(|(i, (_, now))| self.contents.get(*i) != Some(*now))
            .map(|(_, ((label, _), _))| label.clone())
            .collect();
        if !changed.is_empty() {
            self.auth.set_keys(keys);
            self.contents = contents;
        }
        Ok(changed)
    }
}
