//! SIGHUP: one thread reads everything a running node can take again, in
//! one order — the settings (through the embedder's [`SettingsReload`]),
//! then the token key files, then the TLS certificate and key — and logs
//! one line per thing that changed, or one error per thing that failed
//! (which keeps its old value: a bad file never stops a running node nor
//! drops what it serves with).

use std::fmt;

use log::Level;
use tether_apps::HubShared;

use crate::keys::KeyReload;
use crate::tls::CertFiles;

/// Lines for the log, each with its level, in the order they happened.
pub type ReloadLog = Vec<(Level, String)>;

/// The closure behind a [`SettingsReload`].
type ReadSettings = dyn FnMut(Option<&HubShared>) -> Result<ReloadLog, String> + Send;

/// How the node's settings are read again on SIGHUP, wherever they come
/// from (a file, say): the embedder's closure is given the hub's shared
/// state (`None` for the echo), reads the settings, gives the hub what
/// it can take while running ([`HubShared::reload`]), and returns lines
/// for the log saying what changed. An `Err` means nothing changed; the
/// node logs it as an error.
///
/// ```
/// use tether_node::{NodeConfig, SettingsReload};
///
/// let mut config = NodeConfig::new("127.0.0.1:0".parse()?);
/// config.reload_settings = Some(SettingsReload::new(|hub| {
///     let _ = hub; // read the settings, then hub.reload(settings)
///     Ok(vec![(log::Level::Info, "config: reloaded, nothing changed".to_owned())])
/// }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SettingsReload(Box<ReadSettings>);

impl SettingsReload {
    /// A reload of the settings by `read`.
    pub fn new(read: impl FnMut(Option<&HubShared>) -> Result<ReloadLog, String> + Send + 'static) -> Self {
        SettingsReload(Box::new(read))
    }
}

impl fmt::Debug for SettingsReload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SettingsReload")
    }
}

/// Everything a SIGHUP reads again, in its order.
pub(crate) struct Reloader {
    pub(crate) settings: Option<SettingsReload>,
    pub(crate) hub: Option<HubShared>,
    pub(crate) keys: Option<KeyReload>,
    pub(crate) cert: Option<CertFiles>,
}

impl Reloader {
    /// One reload: the settings, then the key files, then the
    /// certificate; each logged, and returned as logged.
    pub(crate) fn reload(&mut self) -> ReloadLog {
        let mut lines = Vec::new();
        if let Some(SettingsReload(read)) = &mut self.settings {
            match read(self.hub.as_ref()) {
                Ok(said) => lines.extend(said),
                Err(e) => lines.push((
                    Level::Error,
                    format!("config: reload failed, nothing changed: {e}"),
                )),
            }
        }
        if let Some(keys) = &mut self.keys {
            match keys.reload() {
                Ok(changed) if changed.is_empty() => {}
                Ok(changed) => lines.push((
                    Level::Info,
                    format!("hub: token keys reloaded ({} changed)", changed.join(", ")),
                )),
                Err(e) => lines.push((
                    Level::Error,
                    format!("hub: key reload failed, the current keys stay: {e}"),
                )),
            }
        }
        if let Some(cert) = &mut self.cert {
            match cert.reload() {
                Ok(false) => {}
                Ok(true) => lines.push((
                    Level::Info,
                    format!("TLS: certificate and key reloaded ({})", cert.describe()),
                )),
                Err(e) => lines.push((
                    Level::Error,
                    format!("TLS: reload failed, the current certificate stays: {e}"),
                )),
            }
        }
        for (level, line) in &lines {
            log::log!(*level, "{line}");
        }
        lines
    }

    /// Whether there is anything to read again.
    pub(crate) fn is_empty(&self) -> bool {
        self.settings.is_none() && self.keys.is_none() && self.cert.is_none()
    }
}

/// SIGHUP taken: from [`Hangup::install`] on, a SIGHUP no longer ends the
/// process, and those that arrive before the node's reload thread runs
/// are kept for it (one reload for any number of them). A node installs
/// it when it is set up; a program that reads its configuration first
/// installs it before that and hands it over
/// ([`NodeConfig::sighup`](crate::NodeConfig::sighup)), so that a
/// SIGHUP at any moment of a start reloads once the node is set up.
pub struct Hangup(signal_hook::iterator::Signals);

impl fmt::Debug for Hangup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hangup")
    }
}

impl Hangup {
    /// Takes SIGHUP from now on.
    ///
    /// # Errors
    ///
    /// The signal handler could not be installed.
    pub fn install() -> std::io::Result<Hangup> {
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]).map(Hangup)
    }

    /// The one thread that reloads on SIGHUP, one reload at a time (a
    /// SIGHUP during a reload makes one more after it).
    ///
    /// With nothing to reload there is no thread: a second thread, even
    /// one that sleeps, makes glibc take the cancellable path of every
    /// `send` and `recv` of a single-loop server (about 47 instructions a
    /// call, 5 % of a small echo). SIGHUP stays taken, and does nothing.
    pub(crate) fn spawn(self, mut reloader: Reloader) -> std::io::Result<()> {
        let Hangup(mut signals) = self;
        if reloader.is_empty() {
            // Kept for the life of the process: dropped, its handler would
            // go, and a SIGHUP would end the process again.
            std::mem::forget(signals);
            return Ok(());
        }
        std::thread::Builder::new()
            .name("tether-reload".into())
            .spawn(move || {
                for _ in signals.forever() {
                    reloader.reload();
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tether_apps::HubAuth;
    use tether_auth::{KeyFile, Keys};

    use super::*;

    const FIRST: &[u8] = b"the first secret, of 32 bytes!!!";
    const SECOND: &[u8] = b"the second secret, of 32 bytes!!";

    #[test]
    fn settings_then_keys_each_logged_once_changed_and_a_bad_file_keeps_the_keys() {
        let path = std::env::temp_dir().join(format!("tether-reload-{}-secret", std::process::id()));
        std::fs::write(&path, FIRST).unwrap();
        let auth = HubAuth::new(Keys::from_secret(FIRST).unwrap());
        let files = vec![("--jwt-secret-file".to_owned(), KeyFile::Secret(path.clone()))];
        let mut settings_reads = 0;
        let mut reloader = Reloader {
            settings: Some(SettingsReload::new(move |_| {
                settings_reads += 1;
                match settings_reads {
                    2 => Err("the file does not read".to_owned()),
                    n => Ok(vec![(Level::Info, format!("settings {n}"))]),
                }
            })),
            hub: None,
            keys: Some(KeyReload::new(auth.clone(), files)),
            cert: None,
        };
        let line = |level, text: &str| (level, text.to_owned());

        std::fs::write(&path, SECOND).unwrap();
        let before = auth.keys();
        assert_eq!(
            reloader.reload(),
            [
                line(Level::Info, "settings 1"),
                line(
                    Level::Info,
                    "hub: token keys reloaded (--jwt-secret-file changed)"
                ),
            ]
        );
        assert!(!Arc::ptr_eq(&before, &auth.keys()), "the new keys are in use");

        // A bad key file, and settings that fail: an error each, and the
        // keys in use stay.
        std::fs::write(&path, b"short").unwrap();
        let before = auth.keys();
        let lines = reloader.reload();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(
            lines[0],
            line(
                Level::Error,
                "config: reload failed, nothing changed: the file does not read"
            )
        );
        assert_eq!(lines[1].0, Level::Error);
        assert!(
            lines[1]
                .1
                .starts_with("hub: key reload failed, the current keys stay: --jwt-secret-file"),
            "{lines:?}"
        );
        assert!(Arc::ptr_eq(&before, &auth.keys()), "the keys in use stay");

        // The file as it was at the last good reload: nothing to say of it.
        std::fs::write(&path, SECOND).unwrap();
        assert_eq!(reloader.reload(), [line(Level::Info, "settings 3")]);
        assert!(Arc::ptr_eq(&before, &auth.keys()));
        let _ = std::fs::remove_file(&path);
    }
}
