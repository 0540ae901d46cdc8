//! Making tokens: for a server that is its own issuer (the demo's sign-in),
//! and for tests.

use crate::error::Error;
use crate::limits::MIN_SECRET_LEN;
use crate::rights::TetherClaim;

/// The claims of a token to sign: its subject, the `tether` claim, when it
/// was issued and when it expires (Unix seconds), and an audience and
/// issuer if the verifying side checks them.
///
/// ```
/// use tether_auth::{Keys, NewToken, TetherClaim, Validation, verify};
///
/// let secret = b"a secret of at least thirty-two bytes!";
/// let rights = TetherClaim::new(vec!["user.{sub}".into()], vec!["chat.*".into()]);
/// let token = NewToken::new("alice", rights, 1_000, 1_600).sign_hs256(secret)?;
///
/// let who = verify(&token, &Keys::from_secret(secret)?, &Validation::new(), 1_200)?;
/// assert_eq!(who.subject.as_deref(), Some("alice"));
/// assert!(who.rights.may_subscribe("user.alice"));
/// assert!(who.rights.may_publish("chat.lobby"));
/// assert_eq!(who.expires_at, Some(1_600));
/// # Ok::<(), tether_auth::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewToken {
    /// `sub`.
    pub subject: String,
    /// `tether`: the topics it grants.
    pub rights: TetherClaim,
    /// `iat`.
    pub issued_at: u64,
    /// `exp`.
    pub expires_at: u64,
    /// `aud`, if any.
    pub audience: Option<String>,
    /// `iss`, if any.
    pub issuer: Option<String>,
    /// `jti`, if any: the token's id, by which it can be revoked.
    pub token_id: Option<String>,
}

impl NewToken {
    /// A token for `subject` with these rights, issued at `issued_at` and
    /// good until `expires_at`; no audience, no issuer.
    pub fn new(subject: impl Into<String>, rights: TetherClaim, issued_at: u64, expires_at: u64) -> NewToken {
        NewToken {
            subject: subject.into(),
            rights,
            issued_at,
            expires_at,
            audience: None,
            issuer: None,
            token_id: None,
        }
    }

    /// The token, signed with HS256 and `secret`: what [`verify`](fn@crate::verify::verify)
    /// accepts with [`Keys::from_secret`](crate::keys::Keys::from_secret) of the same secret.
    ///
    /// # Errors
    ///
    /// [`Error::ShortSecret`] for a secret shorter than
    /// [`MIN_SECRET_LEN`] bytes; [`Error::InvalidKey`] if the crypto
    /// backend cannot sign.
    pub fn sign_hs256(&self, secret: &[u8]) -> Result<String, Error> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::ShortSecret { len: secret.len() });
        }
        let mut claims = serde_json::Map::new();
        claims.insert("sub".into(), self.subject.clone().into());
        claims.insert("iat".into(), self.issued_at.into());
        claims.insert("exp".into(), self.expires_at.into());
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), audience.clone().into());
        }
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), issuer.clone().into());
        }
        if let Some(id) = &self.token_id {
            claims.insert("jti".into(), id.clone().into());
        }
        claims.insert(
            "tether".into(),
            serde_json::json!({ "sub": self.rights.subscribe, "pub": self.rights.publish }),
        );
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &serde_json::Value::Object(claims),
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .map_err(|e| Error::InvalidKey(format!("signing failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keys;
    use crate::validation::Validation;
    use crate::verify::verify;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn signed_tokens_verify_with_their_claims() {
        let rights = TetherClaim::new(vec!["user.{sub}".into()], vec!["chat.*".into(), "user.*".into()]);
        let mut token = NewToken::new("bob", rights, 100, 700);
        token.audience = Some("tether".into());
        token.issuer = Some("demo".into());
        token.token_id = Some("t-1".into());
        let signed = token.sign_hs256(SECRET).unwrap();
        let keys = Keys::from_secret(SECRET).unwrap();
        let validation = Validation::new().audience(["tether"]).issuer(["demo"]).leeway(0);
        let who = verify(&signed, &keys, &validation, 699).unwrap();
        assert_eq!(who.subject.as_deref(), Some("bob"));
        assert!(who.rights.may_subscribe("user.bob"));
        assert!(!who.rights.may_subscribe("user.alice"));
        assert!(who.rights.may_publish("user.alice"));
        assert_eq!(who.expires_at, Some(700));
        assert_eq!((who.token_id.as_deref(), who.issued_at), (Some("t-1"), Some(100)));
        assert_eq!(verify(&signed, &keys, &validation, 700), Err(Error::Expired));
        // Another audience, another issuer, another secret: refused.
        let other = Validation::new().audience(["else"]).issuer(["demo"]);
        assert_eq!(verify(&signed, &keys, &other, 200), Err(Error::Audience));
        let other = Validation::new().audience(["tether"]).issuer(["else"]);
        assert_eq!(verify(&signed, &keys, &other, 200), Err(Error::Issuer));
        let wrong = Keys::from_secret(b"fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(
            verify(&signed, &wrong, &validation, 200),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn short_secrets_sign_nothing() {
        let token = NewToken::new("a", TetherClaim::default(), 0, 1);
        assert_eq!(
            token.sign_hs256(&SECRET[..31]),
            Err(Error::ShortSecret { len: 31 })
        );
    }
}
