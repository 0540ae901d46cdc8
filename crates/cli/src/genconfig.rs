//! `tether genconfig`: a commented configuration file for `tether serve
//! --config`, with fresh random secrets from the operating system's
//! generator (a publish token, a metrics token, and an HS256 secret in a
//! file of its own beside it), that `tether check-config` accepts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ring::rand::{SecureRandom, SystemRandom};

/// Options of `tether genconfig`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The file to write. The token secret goes beside it, in the same
    /// name with `.jwt-secret` for its extension.
    #[arg(value_name = "FILE", default_value = "tether.toml")]
    file: PathBuf,
    /// Replace the files if they exist (otherwise that is an error).
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(args: &Args) -> ExitCode {
    match generate(args) {
        Ok(secret) => {
            println!(
                "wrote {} and its token secret {} (both readable by you alone); check it with \
                 `tether check-config {}`",
                args.file.display(),
                secret.display(),
                args.file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tether genconfig: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `n` random bytes from the operating system, in hexadecimal.
fn random_hex(rng: &SystemRandom, n: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; n];
    rng.fill(&mut bytes)
        .map_err(|_| "the system's random number generator failed".to_owned())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A path as a TOML string.
fn toml_path(path: &Path) -> Result<String, String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{}: not a UTF-8 path", path.display()))?;
    Ok(toml::Value::String(text.to_owned()).to_string())
}

/// Writes the configuration and its secret file; the secret file's path.
fn generate(args: &Args) -> Result<PathBuf, String> {
    let secret_path = args.file.with_extension("jwt-secret");
    if secret_path == args.file {
        return Err(format!(
            "{}: choose another name (its secret would be written over it)",
            args.file.display()
        ));
    }
    let dir = match args.file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    // Absolute, so that the file means the same from any directory.
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let secret_name = secret_path.file_name().map(PathBuf::from).unwrap_or_default();
    let rng = SystemRandom::new();
    // 256 bits each; the secret is its 64 hexadecimal characters, with no
    // line ending to leave out.
    let jwt_secret = random_hex(&rng, 32)?;
    let publish_token = random_hex(&rng, 32)?;
    let metrics_token = random_hex(&rng, 32)?;
    let text = contents(
        &args.file,
        &toml_path(&dir.join(&secret_name))?,
        &toml_path(&dir.join("tether-data"))?,
        &publish_token,
        &metrics_token,
    );
    if !args.force
        && let Some(there) = [&args.file, &secret_path].into_iter().find(|p| p.exists())
    {
        return Err(format!("{}: it exists (--force replaces it)", there.display()));
    }
    write_private(&secret_path, jwt_secret.as_bytes(), args.force)?;
    write_private(&args.file, text.as_bytes(), args.force)?;
    Ok(secret_path)
}

/// Writes `bytes` to a new file at `path` that only its owner may read
/// (an existing one only with `force`).
fn write_private(path: &Path, bytes: &[u8], force: bool) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{}: it exists (--force replaces it)", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The configuration file's text.
fn contents(
    file: &Path,
    secret_file: &str,
    data_dir: &str,
    publish_token: &str,
    metrics_token: &str,
) -> String {
    let name = file.display();
    format!(
        r#"# tether serve --config {name}
#
# Made by `tether genconfig`. Each key is a long option of `tether serve`
# (`tether serve --help`): true/false for a flag, a string or a number for
# an option, an array for an option that repeats. The command line and
# the TETHER_<NAME> variables win over this file. `tether check-config
# {name}` checks it; SIGHUP makes a running server read it again.
#
# It holds secrets: keep it readable by the server's user alone.

addr = "127.0.0.1"
port = 8080
app = "hub"
log-level = "info"

# The application's backend publishes (POST /topics/NAME, /api/...) and
# issues tickets with this bearer token.
publish-token = "{publish_token}"

# /metrics and the admin page ask for this bearer token.
metrics-token = "{metrics_token}"

# JSON Web Tokens (HS256) are verified with the secret in this file: its
# 64 characters, no line ending (one final line ending would not be part
# of the secret). Sign one for a test with
#   tether gentoken --config {name} --sub alice --allow 'user.alice.*' --ttl 1h
jwt-secret-file = {secret_file}
# A token must name this audience ("aud").
jwt-audience = ["tether"]
# Topics that only a token granting them may subscribe to.
private = ["user.*"]

# Browsers from these origins may use the hub besides the server's own.
# trusted-origin = ["https://app.example.com"]

# The hub's events on disk, recovered after a restart.
data-dir = {data_dir}
fsync = "interval=10"

# Event streams go compressed (gzip or deflate) to clients that accept
# it; a namespace rule compress=off keeps a topic's streams plain (for
# secrets beside what others can publish).
sse-compression = "on"

# TLS on the port:
# tls-cert = "/etc/tether/cert.pem"
# tls-key = "/etc/tether/key.pem"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_paths_quoted() {
        let rng = SystemRandom::new();
        let a = random_hex(&rng, 32).unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(&rng, 32).unwrap());
        let path = "/a \"b\" 'c' \\d";
        let table: toml::Table =
            toml::from_str(&format!("k = {}", toml_path(Path::new(path)).unwrap())).unwrap();
        assert_eq!(table["k"].as_str(), Some(path));
    }
}
