//! `tether serve`: the options, from the command line, the environment
//! and a file, made into a [`tether_node::NodeConfig`] and run; SIGHUP
//! with `--config` reads them again. Each group of options is a module:
//! [`server`] (address, limits, compression), [`tls`], [`hub`] (access,
//! metrics, storage), [`auth`] (tokens), [`hooks`] (the backend), [`bus`]
//! (Redis, NATS), `outbox` (a PostgreSQL outbox table), `kafka` (Kafka
//! topics).

mod auth;
mod bus;
mod hooks;
mod hub;
mod jwks;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "outbox")]
mod outbox;
mod server;
mod tls;
mod values;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::FromArgMatches;
use clap::parser::ValueSource;
use log::Level;
use tether_apps::{Demo, DemoLogin, HubSettings, HubShared};
use tether_auth::Keys;
use tether_node::{Hangup, HubNode, KeyFiles, NodeApp, NodeConfig, NodeError, SettingsReload};
use tether_server::Config;

pub(crate) use bus::check_files as check_bus_files;
pub(crate) use server::{AppChoice, Args};

use crate::{config, logger, reload};

/// Options that a configuration file cannot set.
pub(crate) const RESERVED: &[&str] = &["config"];

/// What `tether serve` does, in `tether --help` and `tether serve --help`.
pub(crate) const ABOUT: &str =
    "Serve WebSocket, Server-Sent Events and HTTP on one port (the demo by default)";

/// The command `tether serve` as `tether` declares it (its help included),
/// without the environment.
pub(crate) fn command() -> clap::Command {
    <Args as clap::Args>::augment_args(clap::Command::new("serve"))
        .about(ABOUT)
        .long_about(None)
        .bin_name("tether serve")
}

/// `tether serve ARGS` (what follows `serve`): the options from the
/// command line, from `TETHER_<NAME>` and from the `--config` file, in that
/// precedence, then [`run`].
pub(crate) fn main(argv: &[OsString]) -> ExitCode {
    // SIGHUP is taken before anything is read, so that one sent while the
    // server starts reloads once it has started (its default would end
    // the process).
    let sighup = match Hangup::install() {
        Ok(sighup) => Some(sighup),
        Err(e) => {
            eprintln!("tether serve: SIGHUP: {e}");
            return ExitCode::FAILURE;
        }
    };
    match parse(argv) {
        Ok((args, given)) => {
            let reload = Reload {
                argv: argv.to_vec(),
                given,
                sighup,
                // With a file, SIGHUP reads the options again.
                options: args.config.is_some(),
            };
            run(&args, Some(reload))
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("tether serve: {line}");
            }
            ExitCode::from(2)
        }
    }
}

/// The options: the file's entries go before the command line's, each
/// only if neither the command line nor the environment sets its option
/// (so a list on the command line replaces the file's), and clap parses
/// them all at once. Help, version and clap's own errors exit here.
fn parse(argv: &[OsString]) -> Result<(Args, reload::Given), String> {
    let cmd = config::with_env(command());
    let bin = || std::iter::once(OsString::from("tether serve"));
    // What the command line and the environment give, and the file they
    // name; their errors are reported by the full parse below.
    let given = cmd
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(bin().chain(argv.iter().cloned()))
        .unwrap_or_else(|e| e.exit());
    let mut from_file = Vec::new();
    let path = given.get_one::<PathBuf>("config");
    if let Some(path) = path {
        for entry in config::read(&command(), path, RESERVED).map_err(|e| e.describe(path))? {
            let source = given.value_source(&entry.id);
            if !matches!(source, Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
                from_file.extend(entry.args);
            }
        }
    }
    let matches = match cmd.try_get_matches_from(bin().chain(from_file).chain(argv.iter().cloned())) {
        Ok(matches) => matches,
        Err(e) => match (from_environment(&e, &command(), argv), path) {
            (Some(message), _) => return Err(message),
            (None, Some(path)) if e.use_stderr() => {
                return Err(format!(
                    "{} (with the options of {})",
                    config::first_line(&e),
                    path.display()
                ));
            }
            _ => e.exit(),
        },
    };
    let args = Args::from_arg_matches(&matches).map_err(|e| config::first_line(&e))?;
    Ok((args, reload::given(&command(), &matches)))
}

/// A clap error about a value that came from a `TETHER_<NAME>` variable,
/// said with the variable's name (clap names the option, `'--port
/// <PORT>'`, wherever the value came from); `None` for another error, or a
/// value the command line gave.
fn from_environment(e: &clap::Error, cmd: &clap::Command, argv: &[OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = shown.strip_prefix("--")?.split([' ', '=']).next()?;
    let arg = cmd.get_arguments().find(|arg| arg.get_long() == Some(long))?;
    let variable = config::env_name(long);
    std::env::var_os(&variable).filter(|value| !value.is_empty())?;
    let mut names: Vec<&str> = vec![long];
    names.extend(arg.get_all_aliases().unwrap_or_default());
    let short = arg.get_short().map(|c| format!("-{c}"));
    let given = argv.iter().any(|word| {
        let word = word.to_string_lossy();
        let long_given = names.iter().any(|name| {
            word.strip_prefix("--")
                .and_then(|w| w.strip_prefix(name))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        });
        long_given || short.as_deref().is_some_and(|short| word.starts_with(short))
    });
    if given {
        return None;
    }
    Some(config::first_line(e).replace(&format!("'{shown}'"), &format!("{variable} (--{long})")))
}

/// The token options of `tether serve` that `argv` (with the
/// environment and the `--config` file, as serve reads them) give: the
/// HMAC secret file, whether a public key or key set is given, the
/// audiences and the issuers.
pub(crate) fn token_options(argv: &[OsString]) -> Result<TokenOptions, String> {
    let (args, _) = parse(argv)?;
    Ok(TokenOptions {
        secret_file: args.auth.jwt_secret_file.clone(),
        public_keys: args.auth.jwt_public_key.is_some() || args.auth.jwks.is_some(),
        audiences: args.auth.jwt_audiences.clone(),
        issuers: args.auth.jwt_issuers.clone(),
    })
}

/// See [`token_options`].
pub(crate) struct TokenOptions {
    pub(crate) secret_file: Option<PathBuf>,
    pub(crate) public_keys: bool,
    pub(crate) audiences: Vec<String>,
    pub(crate) issuers: Vec<String>,
}

/// What a SIGHUP needs to read the options again: the command line, and
/// what the options were.
pub(crate) struct Reload {
    argv: Vec<OsString>,
    given: reload::Given,
    /// SIGHUP, taken at start.
    sighup: Option<Hangup>,
    /// Whether a SIGHUP reads the options again (with `--config`).
    options: bool,
}

/// The hub's settings that `args` give (the demo's additions with
/// `--app demo`): at start, and again on each SIGHUP with `--config`.
/// The metrics' listener goes into `config`; the token key files (to read
/// again on SIGHUP) come back with them.
fn hub_settings(
    args: &Args,
    login: Option<&DemoLogin>,
    config: &mut Config,
    keys_in_use: Option<Keys>,
) -> Result<(HubSettings, Option<&'static str>, KeyFiles), String> {
    let (mut settings, token_source) = args.hub.settings()?;
    settings.build_info = Some((
        crate::version::VERSION.to_owned(),
        crate::version::COMMIT.to_owned(),
    ));
    args.metrics.apply(&mut settings, config);
    let demo_keys = login
        .map(DemoLogin::keys)
        .transpose()
        .map_err(|e| format!("the demo's key: {e}"))?;
    let files = match args.auth.hub_auth(demo_keys, keys_in_use)? {
        Some((auth, files)) => {
            settings.auth = Some(auth);
            files
        }
        None => KeyFiles::default(),
    };
    if matches!(args.app, AppChoice::Demo) {
        settings = Demo::settings(settings);
    }
    Ok((settings, token_source, files))
}

/// What the node runs on each SIGHUP (before it reads the key files and
/// the certificate again): reads the options as at start and gives the
/// hub the settings they make; says what changed, and what of it takes a
/// restart (kept as it is until then). A file that no longer reads, or
/// options that no longer go together, change nothing (the error says
/// why). The key files are not read here: the keys in use stand in, and
/// the node reads the files next, so that a bad key file does not hold
/// back the rest.
fn settings_reload(reload: Reload, login: Option<DemoLogin>) -> SettingsReload {
    let Reload { argv, mut given, .. } = reload;
    SettingsReload::new(move |hub: Option<&HubShared>| {
        let Some(shared) = hub else {
            return Ok(Vec::new());
        };
        let (args, now_given) = parse(&argv)?;
        let mut scratch = Config::new(SocketAddr::new(args.addr, args.port));
        let in_use = shared
            .current_settings()
            .auth
            .as_ref()
            .map(|auth| (*auth.keys()).clone());
        let (settings, _, _) =
            preflight(&args).and_then(|()| hub_settings(&args, login.as_ref(), &mut scratch, in_use))?;
        let (applied, restart) = reload::changes(&given, &now_given);
        let kept = shared.reload(settings);
        logger::init(args.log_level, args.log_format);
        let mut lines = Vec::new();
        if applied.is_empty() && restart.is_empty() {
            lines.push((Level::Info, "config: reloaded, nothing changed".to_owned()));
        } else if !applied.is_empty() {
            lines.push((Level::Info, format!("config: reloaded: {}", applied.join(", "))));
        }
        if !restart.is_empty() {
            lines.push((
                Level::Warn,
                format!(
                    "config: changed, and taking effect only after a restart: {}",
                    restart.join(", ")
                ),
            ));
        }
        for what in kept {
            lines.push((Level::Warn, format!("config: kept until a restart: {what}")));
        }
        given = now_given;
        Ok(lines)
    })
}

/// The checks of the options that `run` makes before it starts and that
/// read nothing and write nothing.
pub(crate) fn preflight(args: &Args) -> Result<(), String> {
    needs_certificate(args)?;
    match args.app {
        AppChoice::Demo | AppChoice::Hub => {
            let (settings, _) = args.hub.settings()?;
            args.hooks.config(&settings)?;
            #[cfg(feature = "kafka")]
            args.kafka.kafka()?;
            let demo_keys = matches!(args.app, AppChoice::Demo) && !args.auth.has_keys();
            args.auth.check(demo_keys)
        }
        AppChoice::Echo => Ok(()),
    }
}

/// A TLS listener or HTTP/3 asked for without a certificate, in the
/// options' words (the node would refuse it too, in its own).
fn needs_certificate(args: &Args) -> Result<(), String> {
    #[cfg(feature = "tls")]
    if args.tls.tls_listen.is_some() && args.tls.tls_cert.is_none() && !args.tls.tls_self_signed {
        return Err(tls::TLS_LISTEN_NEEDS_CERTIFICATE.to_owned());
    }
    #[cfg(feature = "tls")]
    if args.http3 && args.tls.tls_cert.is_none() && !args.tls.tls_self_signed {
        return Err(tls::HTTP3_NEEDS_CERTIFICATE.to_owned());
    }
    let _ = args;
    Ok(())
}

pub(crate) fn run(args: &Args, reload: Option<Reload>) -> ExitCode {
    logger::init(args.log_level, args.log_format);
    match start(args, reload) {
        Ok(()) => ExitCode::SUCCESS,
        Err(NodeError::Serve(e)) => {
            log::error!("{e}");
            eprintln!("tether serve: {e}");
            ExitCode::FAILURE
        }
        Err(NodeError::Storage(e)) => {
            eprintln!("tether serve: --data-dir: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("tether serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The node the options describe, set up and run.
fn start(args: &Args, reload: Option<Reload>) -> Result<(), NodeError> {
    needs_certificate(args).map_err(NodeError::Config)?;
    let mut config = NodeConfig::new(SocketAddr::new(args.addr, args.port));
    config.server = args.server_config();
    #[cfg(feature = "tls")]
    {
        config.tls = args.tls.tls()?;
    }
    config.threads = args.threads;
    if args.log_format == logger::Format::Json {
        config.announce = Some(crate::banner::json());
    }
    let hub = matches!(args.app, AppChoice::Demo | AppChoice::Hub);
    let login = demo_login(args).map_err(NodeError::Config)?;
    let (settings, token_source, key_files) = if hub {
        hub_settings(args, login.as_ref(), &mut config.server, None).map_err(NodeError::Config)?
    } else {
        if args.metrics.metrics_listen.is_some() {
            log::warn!("--metrics-listen has no effect with --app echo (it has no /metrics)");
        }
        let (settings, source) = args.hub.settings().map_err(NodeError::Config)?;
        (settings, source, KeyFiles::new())
    };
    if hub {
        config.hooks = args.hooks.hooks(&settings).map_err(NodeError::Config)?;
        config.bus = bus::bus(args);
        #[cfg(feature = "outbox")]
        {
            config.outbox = args.outbox.outbox().map_err(NodeError::Config)?;
        }
        #[cfg(feature = "kafka")]
        {
            config.kafka = args.kafka.kafka().map_err(NodeError::Config)?;
        }
    } else {
        bus::warn_unused(args);
        #[cfg(feature = "outbox")]
        if args.outbox.outbox_url.is_some() || args.outbox.outbox_url_file.is_some() {
            log::warn!("--outbox-url has no effect with --app echo (it has no hub)");
        }
        #[cfg(feature = "kafka")]
        if args.kafka.given() {
            log::warn!("--kafka-brokers has no effect with --app echo (it has no hub)");
        }
    }
    config.hub = settings;
    config.publish_token_source = token_source.map(str::to_owned);
    config.key_files = key_files;
    config.handshake = server::handshake(args);
    config.storage = args.durable.storage();
    config.app = match args.app {
        AppChoice::Demo => NodeApp::Demo(login.clone()),
        AppChoice::Hub => NodeApp::Hub,
        AppChoice::Echo => NodeApp::Echo,
    };
    if let Some(mut reload) = reload {
        config.sighup = reload.sighup.take();
        if reload.options {
            config.reload_settings = Some(settings_reload(reload, login));
        }
    }
    HubNode::new(config)?.run()
}

/// The demo's sign-in: with `--app demo` and no key file, a random secret
/// (never shown) made once and kept as `demo.secret` in `--data-dir`, or
/// made now with `--memory`; its tokens good for `--demo-token-ttl` (the
/// node makes its cookie `Secure` when the port serves TLS).
fn demo_login(args: &Args) -> Result<Option<DemoLogin>, String> {
    if !matches!(args.app, AppChoice::Demo) || args.auth.has_keys() {
        return Ok(None);
    }
    // Kept in the data directory, as the events are: guests keep their
    // names and pages their sign-ins across a restart.
    let login = match args.durable.memory {
        true => DemoLogin::generate(),
        false => DemoLogin::kept_in(&args.durable.data_dir),
    };
    let mut login = login.map_err(|e| format!("the demo's secret: {e}"))?;
    login.ttl = Duration::from_secs(args.auth.demo_token_ttl);
    Ok(Some(login))
}
