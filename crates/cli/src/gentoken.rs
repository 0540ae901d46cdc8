//! `tether gentoken`: a JSON Web Token signed with the server's HMAC
//! secret, for tests, scripts and operators (`--sub alice --allow
//! 'user.alice.*' --ttl 1h`). The secret, the audience and the issuer are
//! found as `tether serve` finds them: its `--config` file, its
//! `--jwt-secret-file`, `--jwt-audience` and `--jwt-issuer`, and the
//! `TETHER_<NAME>` variables.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use tether_auth::{Keys, NewToken, TetherClaim, Validation, verify};

use crate::serve;

/// The longest `--ttl`: a year.
const MAX_TTL: u64 = 366 * 86_400;

/// Options of `tether gentoken`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The token's subject (`sub`): who it stands for.
    #[arg(long, value_name = "SUBJECT")]
    sub: String,
    /// A topic the token may subscribe to: a name, or a prefix ending in *
    /// (repeat for more); {sub} stands for the subject.
    #[arg(long = "allow", value_name = "PATTERN")]
    allow: Vec<String>,
    /// A topic the token may publish to (repeat for more).
    #[arg(long = "allow-publish", value_name = "PATTERN")]
    allow_publish: Vec<String>,
    /// How long the token is good for: seconds, or a number followed by
    /// s, m, h or d (90s, 15m, 1h, 7d); at most 366 days.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_ttl)]
    ttl: u64,
    /// The token's id (`jti`), by which it can be revoked.
    #[arg(long, value_name = "ID")]
    jti: Option<String>,
    /// The server's configuration file (as `tether serve --config`): its
    /// jwt-secret-file signs, and its first jwt-audience and jwt-issuer
    /// become the token's `aud` and `iss`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The HS256 secret file (as `tether serve --jwt-secret-file`; or
    /// TETHER_JWT_SECRET_FILE).
    #[arg(long, value_name = "FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// The token's `aud` [default: the server's first --jwt-audience].
    #[arg(long, value_name = "AUD")]
    audience: Option<String>,
    /// The token's `iss` [default: the server's first --jwt-issuer].
    #[arg(long, value_name = "ISS")]
    issuer: Option<String>,
    /// An audience the server accepts (as `tether serve --jwt-audience`,
    /// repeatable; or TETHER_JWT_AUDIENCE): the first becomes the token's
    /// `aud`, and the token is checked against them all.
    #[arg(long = "jwt-audience", value_name = "AUD")]
    jwt_audiences: Vec<String>,
    /// An issuer the server accepts (as `tether serve --jwt-issuer`,
    /// repeatable; or TETHER_JWT_ISSUER): the first becomes the token's
    /// `iss`.
    #[arg(long = "jwt-issuer", value_name = "ISS")]
    jwt_issuers: Vec<String>,
}

/// `--ttl`: whole seconds, or a number with s, m, h or d, 1 s to
/// [`MAX_TTL`].
fn parse_ttl(text: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "expected a duration from 1s to {}d (seconds, or with s, m, h or d)",
            MAX_TTL / 86_400
        )
    };
    let (digits, unit) = match text.char_indices().last() {
        Some((at, 's')) => (text.get(..at), 1),
        Some((at, 'm')) => (text.get(..at), 60),
        Some((at, 'h')) => (text.get(..at), 3_600),
        Some((at, 'd')) => (text.get(..at), 86_400),
        _ => (Some(text), 1),
    };
    let n: u64 = digits.ok_or_else(bad)?.parse().map_err(|_| bad())?;
    n.checked_mul(unit)
        .filter(|s| (1..=MAX_TTL).contains(s))
        .ok_or_else(bad)
}

pub(crate) fn run(args: &Args) -> ExitCode {
    match token(args) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tether gentoken: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The signed token.
fn token(args: &Args) -> Result<String, String> {
    let mut argv: Vec<OsString> = Vec::new();
    if let Some(config) = &args.config {
        argv.extend(["--config".into(), config.clone().into_os_string()]);
    }
    if let Some(file) = &args.jwt_secret_file {
        argv.extend(["--jwt-secret-file".into(), file.clone().into_os_string()]);
    }
    // The server's own flags, read by its own parser, so that the command
    // line that starts a server also makes tokens it takes.
    for aud in &args.jwt_audiences {
        argv.extend(["--jwt-audience".into(), aud.into()]);
    }
    for iss in &args.jwt_issuers {
        argv.extend(["--jwt-issuer".into(), iss.into()]);
    }
    let options = serve::token_options(&argv)?;
    let Some(path) = options.secret_file else {
        return Err(if options.public_keys {
            "the server verifies with public keys only (--jwt-public-key, --jwks): sign with the \
             issuer's private key; gentoken signs with an HMAC secret (--jwt-secret-file)"
                .to_owned()
        } else {
            "no key to sign with: give --config FILE or --jwt-secret-file FILE (or \
             TETHER_JWT_SECRET_FILE)"
                .to_owned()
        });
    };
    let contents = tether_node::files::read(&path, tether_node::files::MAX_KEY_FILE, "a secret file")
        .map_err(|e| format!("--jwt-secret-file {e}"))?;
    for warning in tether_node::secret_warnings("--jwt-secret-file", &path, &contents) {
        eprintln!("tether gentoken: warning: {warning}");
    }
    let keys =
        Keys::from_secret(&contents).map_err(|e| format!("--jwt-secret-file {}: {e}", path.display()))?;
    let secret = tether_auth::secret_of_file(&contents);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970".to_owned())?
        .as_secs();
    let rights = TetherClaim::new(args.allow.clone(), args.allow_publish.clone());
    let mut new = NewToken::new(args.sub.clone(), rights, now, now.saturating_add(args.ttl));
    new.audience = args
        .audience
        .clone()
        .or_else(|| options.audiences.first().cloned());
    new.issuer = args.issuer.clone().or_else(|| options.issuers.first().cloned());
    new.token_id = args.jti.clone();
    let token = new.sign_hs256(secret).map_err(|e| e.to_string())?;
    // What the server will check, checked now: patterns that parse, a
    // subject that {sub} can stand for, an audience and issuer it takes.
    // Without the server's, the token's own (given on the command line).
    let or_own = |server: Vec<String>, own: &Option<String>| match server.is_empty() {
        true => own.iter().cloned().collect(),
        false => server,
    };
    let validation = Validation::new()
        .leeway(0)
        .audience(or_own(options.audiences, &new.audience))
        .issuer(or_own(options.issuers, &new.issuer));
    verify(&token, &keys, &validation, now)
        .map_err(|e| format!("the server would refuse this token: {e}"))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("7d"), Ok(7 * 86_400));
        for bad in ["", "0", "h", "1y", "-1h", "367d", "18446744073709551615d", "1.5h"] {
            let e = parse_ttl(bad).unwrap_err();
            assert!(e.contains("1s to 366d"), "{bad}: {e}");
        }
    }
}
