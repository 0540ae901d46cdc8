//! Verification keys, each pinned to one algorithm.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::error::Error;
use crate::limits::MIN_SECRET_LEN;

/// Bytes a key file may have, at most.
pub const MAX_KEY_FILE_LEN: usize = 1 << 20;

/// Keys a set may hold, at most.
pub const MAX_KEYS: usize = 100;

/// The signature algorithms this crate verifies (RFC 7518, RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256: a shared secret.
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of 2048 to 8192 bits.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-384 (identity providers' JWKS).
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-384 with SHA-384.
    ES384,
}

/// Every algorithm, by name and as `jsonwebtoken` calls it.
const ALGORITHMS: [(Algorithm, &str, jsonwebtoken::Algorithm); 10] = [
    (Algorithm::HS256, "HS256", jsonwebtoken::Algorithm::HS256),
    (Algorithm::RS256, "RS256", jsonwebtoken::Algorithm::RS256),
    (Algorithm::ES256, "ES256", jsonwebtoken::Algorithm::ES256),
    (Algorithm::EdDSA, "EdDSA", jsonwebtoken::Algorithm::EdDSA),
    (Algorithm::RS384, "RS384", jsonwebtoken::Algorithm::RS384),
    (Algorithm::RS512, "RS512", jsonwebtoken::Algorithm::RS512),
    (Algorithm::PS256, "PS256", jsonwebtoken::Algorithm::PS256),
    (Algorithm::PS384, "PS384", jsonwebtoken::Algorithm::PS384),
    (Algorithm::PS512, "PS512", jsonwebtoken::Algorithm::PS512),
    (Algorithm::ES384, "ES384", jsonwebtoken::Algorithm::ES384),
];

impl Algorithm {
    /// The name of the algorithm in a JWS header's `alg`.
    pub fn name(self) -> &'static str {
        ALGORITHMS
            .iter()
            .find(|(a, _, _)| *a == self)
            .map_or("", |(_, name, _)| name)
    }

    pub(crate) fn from_name(name: &str) -> Option<Algorithm> {
        ALGORITHMS.iter().find(|(_, n, _)| *n == name).map(|(a, _, _)| *a)
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        ALGORITHMS
            .iter()
            .find(|(a, _, _)| *a == self)
            .map_or(jsonwebtoken::Algorithm::HS256, |(_, _, j)| *j)
    }

    pub(crate) fn from_jwt(alg: jsonwebtoken::Algorithm) -> Option<Algorithm> {
        ALGORITHMS.iter().find(|(_, _, j)| *j == alg).map(|(a, _, _)| *a)
    }

    /// The JWK key type (`kty`) and, for elliptic curves, the curve
    /// (`crv`) of this algorithm's keys.
    pub(crate) fn key_type(self) -> (&'static str, Option<&'static str>) {
        match self {
            Algorithm::HS256 => ("oct", None),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => ("RSA", None),
            Algorithm::ES256 => ("EC", Some("P-256")),
            Algorithm::ES384 => ("EC", Some("P-384")),
            Algorithm::EdDSA => ("OKP", Some("Ed25519")),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One verification key and the one algorithm it verifies, with an
/// optional key id (`kid`). Its `Debug` output shows neither the secret
/// nor the key.
#[derive(Clone)]
pub struct Key {
    alg: Algorithm,
    kid: Option<String>,
    key: DecodingKey,
}

impl Key {
    /// An HS256 key: a shared secret of at least [`MIN_SECRET_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`Error::ShortSecret`] for a shorter secret.
    pub fn hmac(secret: &[u8]) -> Result<Key, Error> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::ShortSecret { len: secret.len() });
        }
        Ok(Key {
            alg: Algorithm::HS256,
            kid: None,
            key: DecodingKey::from_secret(secret),
        })
    }

    /// A public key from PEM (`-----BEGIN PUBLIC KEY-----`, the
    /// SubjectPublicKeyInfo of RFC 5280, as `openssl pkey -pubout` writes
    /// it; or `-----BEGIN RSA PUBLIC KEY-----`). Its type decides its
    /// algorithm: RSA is RS256, EC ES256 (P-256) or ES384 (P-384), Ed25519
    /// EdDSA.
    ///
    /// # Errors
    ///
    /// [`Error::PrivateKey`] for a private key, [`Error::InvalidKey`] for
    /// anything else that is not such a public key.
    pub fn from_pem(pem: &[u8]) -> Result<Key, Error> {
        let text = std::str::from_utf8(pem).map_err(|_| Error::InvalidKey("PEM that is not text".into()))?;
        if text.contains("PRIVATE KEY-----") {
            return Err(Error::PrivateKey);
        }
        let key = |alg, key| Key { alg, kid: None, key };
        if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            // The DER RSAPublicKey of a 2048-bit modulus is 270 bytes; a
            // shorter key would fail every verification, so say so now.
            if k.as_bytes().len() < 264 {
                return Err(Error::InvalidKey("an RSA key shorter than 2048 bits".into()));
            }
            return Ok(key(Algorithm::RS256, k));
        }
        if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            // The uncompressed point of P-256 is 65 bytes, of P-384 97: a
            // P-521 key would verify neither ES256 nor ES384.
            return match (k.as_bytes().len(), k.as_bytes().first()) {
                (65, Some(4)) => Ok(key(Algorithm::ES256, k)),
                (97, Some(4)) => Ok(key(Algorithm::ES384, k)),
                _ => Err(Error::InvalidKey("an EC key not on P-256 or P-384".into())),
            };
        }
        if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            if k.as_bytes().len() != 32 {
                return Err(Error::InvalidKey("an Ed25519 key not of 32 bytes".into()));
            }
            return Ok(key(Algorithm::EdDSA, k));
        }
        Err(Error::InvalidKey(
            "not a PEM RSA, EC P-256 or Ed25519 public key".into(),
        ))
    }

    /// This key with a key id: a token whose header has this `kid` is
    /// verified with it.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Key {
        self.kid = Some(kid.into());
        self
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The HMAC secret a secret file's `contents` hold, as
/// [`Keys::from_secret`] takes it: the bytes, less one line ending at the
/// end (`\n` or `\r\n`). An issuer signing with the same file must take
/// the same bytes: signed with the line ending, its tokens would never
/// verify.
///
/// ```
/// assert_eq!(tether_auth::secret_of_file(b"abc\n"), b"abc");
/// assert_eq!(tether_auth::secret_of_file(b"abc\r\n"), b"abc");
/// assert_eq!(tether_auth::secret_of_file(b"abc \n\n"), b"abc \n");
/// ```
pub fn secret_of_file(contents: &[u8]) -> &[u8] {
    contents
        .strip_suffix(b"\r\n")
        .or_else(|| contents.strip_suffix(b"\n"))
        .unwrap_or(contents)
}

/// A key file, by kind (see [`Keys::from_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFile {
    /// An HMAC secret ([`Keys::from_secret`]).
    Secret(PathBuf),
    /// A PEM public key ([`Keys::from_pem`]).
    Pem(PathBuf),
    /// A JSON Web Key Set ([`Keys::from_jwks`]).
    Jwks(PathBuf),
}

/// The keys that tokens are verified with: one or more [`Key`]s, each
/// pinned to its algorithm. Build it from file contents (or with
/// [`Keys::from_files`]) and build it again to rotate keys, e.g. on
/// SIGHUP; a failed rebuild leaves the caller's old set in use.
#[derive(Debug, Clone)]
pub struct Keys {
    keys: Vec<Key>,
}

impl Keys {
    /// A set of these keys.
    ///
    /// # Errors
    ///
    /// [`Error::NoUsableKey`] for no key, [`Error::InvalidKey`] for more
    /// than [`MAX_KEYS`].
    pub fn new(keys: Vec<Key>) -> Result<Keys, Error> {
        if keys.is_empty() {
            return Err(Error::NoUsableKey);
        }
        if keys.len() > MAX_KEYS {
            return Err(Error::InvalidKey(format!("more than {MAX_KEYS} keys")));
        }
        Ok(Keys { keys })
    }

    /// One HS256 key from the contents of a secret file: its bytes, less
    /// one line ending at the end (`\n` or `\r\n`, as `echo` and editors
    /// leave it) so that the secret is the same whichever way the file was
    /// written. Any other byte, whitespace too, is part of the secret.
    ///
    /// # Errors
    ///
    /// [`Error::ShortSecret`] for less than [`MIN_SECRET_LEN`] bytes.
    pub fn from_secret(contents: &[u8]) -> Result<Keys, Error> {
        Keys::new(vec![Key::hmac(secret_of_file(contents))?])
    }

    /// One key from the contents of a PEM public key file ([`Key::from_pem`]).
    ///
    /// # Errors
    ///
    /// As [`Key::from_pem`].
    pub fn from_pem(contents: &[u8]) -> Result<Keys, Error> {
        Keys::new(vec![Key::from_pem(contents)?])
    }

    /// The keys of a JSON Web Key Set (RFC 7517, section 5:
    /// `{"keys":[...]}`).
    ///
    /// A key's algorithm is its `alg` if it has one, otherwise what its
    /// type implies: `RSA` RS256, `EC` with `crv` `P-256` ES256, `OKP` with
    /// `crv` `Ed25519` EdDSA, `oct` HS256. Keys with `use` other than
    /// `sig`, with `key_ops` that do not list `verify`, with an `alg`
    /// this crate does not verify (`HS384`, `RSA-OAEP`, ...), or of a
    /// type or curve it does not know are left out; any other key must be
    /// valid, or the whole set is refused (a file the operator wrote: a
    /// mistake in it is told at once). A set fetched from an identity
    /// provider is read with [`JwkSet::parse`](crate::JwkSet::parse)
    /// instead, which leaves out a bad key and keeps the others.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] for a set that is not such JSON, or a key
    /// that is malformed (an `oct` key shorter than [`MIN_SECRET_LEN`]:
    /// [`Error::ShortSecret`]); [`Error::NoUsableKey`] if no key is left.
    pub fn from_jwks(contents: &[u8]) -> Result<Keys, Error> {
        if contents.len() > MAX_KEY_FILE_LEN {
            return Err(Error::InvalidKey("JWKS too large".into()));
        }
        let set: Value =
            serde_json::from_slice(contents).map_err(|e| Error::InvalidKey(format!("JWKS: {e}")))?;
        let Some(list) = set.get("keys").and_then(Value::as_array) else {
            return Err(Error::InvalidKey("JWKS without a \"keys\" array".into()));
        };
        if list.len() > MAX_KEYS {
            return Err(Error::InvalidKey(format!("more than {MAX_KEYS} keys")));
        }
        let mut keys = Vec::new();
        for (i, jwk) in list.iter().enumerate() {
            match jwk_key(jwk) {
                Ok(key) => keys.push(key),
                Err(Refusal::Left(_)) => {}
                Err(Refusal::Invalid(Error::InvalidKey(why))) => {
                    return Err(Error::InvalidKey(format!("JWKS key {i}: {why}")));
                }
                Err(Refusal::Invalid(other)) => return Err(other),
            }
        }
        Keys::new(keys)
    }

    /// The keys of several files together (see [`KeyFile`]), each read
    /// only if it is a regular file, and at most [`MAX_KEY_FILE_LEN`]
    /// bytes of it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] for a file that cannot be read, is not a
    /// regular file (a device, a FIFO, a directory) or is larger, and those of
    /// [`Keys::from_secret`], [`Keys::from_pem`] and [`Keys::from_jwks`].
    pub fn from_files(files: &[KeyFile]) -> Result<Keys, Error> {
        let mut keys = Vec::new();
        for file in files {
            let set = match file {
                KeyFile::Secret(path) => Keys::from_secret(&read(path)?)?,
                KeyFile::Pem(path) => Keys::from_pem(&read(path)?)?,
                KeyFile::Jwks(path) => Keys::from_jwks(&read(path)?)?,
            };
            keys.extend(set.keys);
        }
        Keys::new(keys)
    }

    /// The keys, in the order given.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    let err = |e: std::io::Error| Error::InvalidKey(format!("{}: {e}", path.display()));
    // Looked at before it is opened (opening a FIFO waits for a writer),
    // and again once open.
    let not_regular = || Error::InvalidKey(format!("{}: not a regular file", path.display()));
    if !std::fs::metadata(path).map_err(err)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(err)?;
    if !file.metadata().map_err(err)?.is_file() {
        return Err(not_regular());
    }
    let mut contents = Vec::new();
    file.take(MAX_KEY_FILE_LEN as u64 + 1)
        .read_to_end(&mut contents)
        .map_err(err)?;
    if contents.len() > MAX_KEY_FILE_LEN {
        return Err(Error::InvalidKey(format!(
            "{}: larger than {MAX_KEY_FILE_LEN} bytes",
            path.display()
        )));
    }
    Ok(contents)
}

/// Why a JWK gave no key.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A key this crate leaves out by design (another `use`, an algorithm
    /// or type it does not verify): the reason.
    Left(String),
    /// A key that claims to be one this crate verifies, and is malformed.
    Invalid(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        Refusal::Invalid(e)
    }
}

/// The key of one JWK (RFC 7517 section 4, RFC 7518 section 6, RFC 8037).
pub(crate) fn jwk_key(jwk: &Value) -> Result<Key, Refusal> {
    let field = |name: &str| -> Result<Option<&str>, Error> {
        match jwk.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::InvalidKey(format!("\"{name}\" is not a string"))),
        }
    };
    if !jwk.is_object() {
        return Err(Error::InvalidKey("not an object".into()).into());
    }
    if let Some(other) = field("use")?.filter(|u| *u != "sig") {
        return Err(Refusal::Left(format!("\"use\" is {other:?}, not \"sig\"")));
    }
    // RFC 7517 section 4.3: a key whose operations are listed is used
    // only for those.
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops
            .as_array()
            .filter(|ops| ops.iter().all(Value::is_string))
            .ok_or_else(|| Error::InvalidKey("\"key_ops\" is not a list of strings".into()))?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(Refusal::Left("\"key_ops\" does not list \"verify\"".into()));
        }
    }
    let kty = field("kty")?.ok_or_else(|| Error::InvalidKey("no \"kty\"".into()))?;
    let crv = field("crv")?;
    let implied = match (kty, crv) {
        ("RSA", _) => Algorithm::RS256,
        ("EC", Some("P-256")) => Algorithm::ES256,
        ("EC", Some("P-384")) => Algorithm::ES384,
        ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
        ("oct", _) => Algorithm::HS256,
        (kty, crv) => {
            return Err(Refusal::Left(match crv {
                Some(crv) => format!("a key of type {kty:?} on curve {crv:?}"),
                None => format!("a key of type {kty:?}"),
            }));
        }
    };
    let alg = match field("alg")? {
        None => implied,
        Some(name) => match Algorithm::from_name(name) {
            Some(alg) if alg.key_type() == implied.key_type() => alg,
            Some(alg) => {
                return Err(Error::InvalidKey(format!("\"alg\" {alg} for a key of type {kty}")).into());
            }
            None => return Err(Refusal::Left(format!("\"alg\" {name:?} is not verified here"))),
        },
    };
    let part = |name: &str| -> Result<Vec<u8>, Error> {
        let text = field(name)?.ok_or_else(|| Error::InvalidKey(format!("no \"{name}\"")))?;
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| Error::InvalidKey(format!("\"{name}\" is not base64url")))
    };
    let point = |len: usize, curve: &str| -> Result<Vec<u8>, Error> {
        let (x, y) = (part("x")?, part("y")?);
        if x.len() != len || y.len() != len {
            return Err(Error::InvalidKey(format!(
                "{curve} coordinates not of {len} bytes"
            )));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(4);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Ok(point)
    };
    let key = match alg.key_type().0 {
        "oct" => return Ok(with_kid(Key::hmac(&part("k")?)?, field("kid")?)),
        "RSA" => {
            let (n, e) = (part("n")?, part("e")?);
            let n = strip_leading_zeros(&n);
            if n.len() < 256 {
                return Err(Error::InvalidKey("an RSA key shorter than 2048 bits".into()).into());
            }
            if n.len() > 1024 {
                return Err(Error::InvalidKey("an RSA key longer than 8192 bits".into()).into());
            }
            if e.is_empty() || e.len() > 8 {
                return Err(Error::InvalidKey("an RSA exponent out of range".into()).into());
            }
            DecodingKey::from_rsa_raw_components(n, &e)
        }
        "EC" if alg == Algorithm::ES384 => DecodingKey::from_ec_der(&point(48, "P-384")?),
        "EC" => DecodingKey::from_ec_der(&point(32, "P-256")?),
        _ => {
            let x = part("x")?;
            if x.len() != 32 {
                return Err(Error::InvalidKey("an Ed25519 key not of 32 bytes".into()).into());
            }
            DecodingKey::from_ed_der(&x)
        }
    };
    Ok(with_kid(Key { alg, kid: None, key }, field("kid")?))
}

fn with_kid(key: Key, kid: Option<&str>) -> Key {
    match kid {
        Some(kid) => key.with_kid(kid),
        None => key,
    }
}

fn strip_leading_zeros(mut bytes: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        assert_eq!(Key::hmac(&[7; 31]).unwrap_err(), Error::ShortSecret { len: 31 });
        assert_eq!(Key::hmac(&[7; 32]).unwrap().algorithm(), Algorithm::HS256);
        let mut file = vec![b'x'; 32];
        file.push(b'\n');
        assert!(Keys::from_secret(&file).is_ok());
        // The line ending is not counted: 31 bytes and a newline is short.
        assert_eq!(
            Keys::from_secret(&file[1..]).unwrap_err(),
            Error::ShortSecret { len: 31 }
        );
        let crlf = [&[b'x'; 31][..], b"\r\n"].concat();
        assert_eq!(
            Keys::from_secret(&crlf).unwrap_err(),
            Error::ShortSecret { len: 31 }
        );
        // Only one line ending goes: the second newline is part of the secret.
        let two = [&[b'x'; 31][..], b"\n\n"].concat();
        assert!(Keys::from_secret(&two).is_ok());
        assert!(Keys::new(vec![]).is_err());
        let many = vec![Key::hmac(&[1; 32]).unwrap(); MAX_KEYS + 1];
        assert!(Keys::new(many).is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = Key::hmac(b"0123456789abcdef0123456789abcdef")
            .unwrap()
            .with_kid("k1");
        let text = format!("{:?}", Keys::new(vec![key]).unwrap());
        assert!(text.contains("HS256") && text.contains("k1"), "{text}");
        assert!(!text.contains("0123") && !text.contains("48, 49"), "{text}");
    }

    #[test]
    fn algorithm_names() {
        for alg in [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ] {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
            assert_eq!(Algorithm::from_jwt(alg.to_jwt()), Some(alg));
            assert_eq!(alg.to_string(), alg.name());
        }
        assert_eq!(Algorithm::from_name("none"), None);
        assert_eq!(Algorithm::from_jwt(jsonwebtoken::Algorithm::HS384), None);
    }

    #[test]
    fn jwks_shapes() {
        let k = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let ok = format!(r#"{{"keys":[{{"kty":"oct","k":"{k}","kid":"a"}}]}}"#);
        let keys = Keys::from_jwks(ok.as_bytes()).unwrap();
        assert_eq!(keys.keys()[0].kid(), Some("a"));
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"keys":{}}"#,
            r#"{"keys":[1]}"#,
            r#"{"keys":[{"k":"AAAA"}]}"#,
            r#"{"keys":[{"kty":"oct"}]}"#,
            r#"{"keys":[{"kty":"oct","k":"!!"}]}"#,
            r#"{"keys":[{"kty":"oct","k":7}]}"#,
            r#"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#,
            r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}]}"#,
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AQAB"}]}"#,
            r#"{"keys":[{"kty":"EC","crv":"P-384","alg":"ES256","x":"AQAB","y":"AQAB"}]}"#,
            r#"{"keys":[{"kty":"RSA","alg":"HS256","n":"AQAB","e":"AQAB"}]}"#,
            r#"{"keys":[{"kty":"RSA","alg":"RS384","n":"AQAB","e":"AQAB"}]}"#,
            r#"{"keys":[{"kty":"EC","crv":"P-384","x":"AQAB","y":"AQAB"}]}"#,
            r#"{"keys":[{"kty":"oct","key_ops":"verify","k":"AAAA"}]}"#,
        ] {
            let err = Keys::from_jwks(bad.as_bytes()).unwrap_err();
            assert!(err.is_config(), "{bad}: {err}");
        }
        assert_eq!(
            Keys::from_jwks(
                format!(
                    r#"{{"keys":[{{"kty":"oct","k":"{}"}}]}}"#,
                    URL_SAFE_NO_PAD.encode([1; 31])
                )
                .as_bytes()
            )
            .unwrap_err(),
            Error::ShortSecret { len: 31 }
        );
        // Left out: encryption keys, other algorithms, other curves and types.
        let skipped = [
            r#"{"kty":"oct","use":"enc","k":"AAAA"}"#,
            r#"{"kty":"RSA","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"oct","alg":"HS384","k":"AAAA"}"#,
            r#"{"kty":"EC","crv":"P-521","x":"AQAB","y":"AQAB"}"#,
            r#"{"kty":"oct","key_ops":["sign"],"k":"AAAA"}"#,
            r#"{"kty":"OKP","crv":"X25519","x":"AQAB"}"#,
            r#"{"kty":"weird"}"#,
        ];
        for s in skipped {
            assert_eq!(
                Keys::from_jwks(format!(r#"{{"keys":[{s}]}}"#).as_bytes()).unwrap_err(),
                Error::NoUsableKey,
                "{s}"
            );
            let with_good = format!(r#"{{"keys":[{s},{{"kty":"oct","k":"{k}"}}]}}"#);
            assert_eq!(
                Keys::from_jwks(with_good.as_bytes()).unwrap().keys().len(),
                1,
                "{s}"
            );
        }
        let huge = vec![b' '; MAX_KEY_FILE_LEN + 1];
        assert!(Keys::from_jwks(&huge).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read() {
        for path in ["/dev/zero", "/"] {
            let err = Keys::from_files(&[KeyFile::Secret(PathBuf::from(path))]).unwrap_err();
            assert_eq!(
                err,
                Error::InvalidKey(format!("{path}: not a regular file")),
                "{path}"
            );
        }
    }

    #[test]
    fn pem_shapes() {
        assert_eq!(
            Key::from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap_err(),
            Error::PrivateKey
        );
        assert_eq!(
            Key::from_pem(b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
                .unwrap_err(),
            Error::PrivateKey
        );
        for bad in [
            &b""[..],
            b"garbage",
            b"\xff\xfe",
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(matches!(Key::from_pem(bad), Err(Error::InvalidKey(_))));
        }
        assert_eq!(strip_leading_zeros(&[0, 0, 1, 0]), &[1, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), &[] as &[u8]);
    }
}
