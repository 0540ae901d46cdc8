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
    pub(crate) fn spawn(self, mut reloader: Reloader) -> std::io::Result<()> {
        let Hangup(mut signals) = self;
        std::thread::Builder::new()
            .name("tether-reload".into())
            .spawn(move || {
                for _ in signals.forever() {
                    if reloader.is_empty() {
                        log::info!("SIGHUP: nothing to reload");
                    } else {
                        reloader.reload();
                    }
                }
            })?;
        Ok(())
    }
}
