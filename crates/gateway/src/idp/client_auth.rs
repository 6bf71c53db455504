//! The client authentication of one request to the IdP (token or PAR endpoint): the configured
//! secret, or a `private_key_jwt` assertion signed now for exactly this audience (a fresh `jti`
//! each time, so the IdP's replay check never trips on a retry of ours).

use aws_lc_rs::rand::SystemRandom;
use portcullis_core::config::{ClientAuthMethod, OidcConfig};
use portcullis_core::oidc::client_assertion::{
    ClientKeyError, assertion_claims, random_jti, sign_assertion,
};
use portcullis_core::oidc::token_request::{ClientCredentials, ClientProof};

/// The key could not sign (random generator failure) or is missing; our own failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    #[error("client assertion: {0}")]
    Sign(#[from] ClientKeyError),
    #[error("private_key_jwt is configured without a key")]
    NoKey,
}

/// What proves the client for one request. `Debug` shows no secret or assertion.
pub enum Proof {
    /// The configured client secret (post or basic).
    Secret,
    /// A client assertion made for this request.
    Assertion(String),
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proof::Secret => "Proof::Secret",
            Proof::Assertion(_) => "Proof::Assertion(***)",
        })
    }
}

impl Proof {
    /// The proof for a request to `aud` at `now`.
    ///
    /// `aud`: the token endpoint URL for token requests. OIDC Core §9 allows the issuer too,
    /// but RFC 7523 §3 names the token endpoint URL as a value the authorization server may
    /// use to identify itself, and some IdPs (Okta, for one) accept only the URL of the
    /// endpoint called; the token endpoint is the value every IdP takes. For pushed requests
    /// the caller passes the issuer, as RFC 9126 §2 recommends (the IdP must accept it).
    pub fn new(cfg: &OidcConfig, aud: &str, now: i64) -> Result<Proof, ClientAuthError> {
        if cfg.auth_method != ClientAuthMethod::PrivateKeyJwt {
            return Ok(Proof::Secret);
        }
        let key = cfg.client_key.as_ref().ok_or(ClientAuthError::NoKey)?;
        let rng = SystemRandom::new();
        let jti = random_jti(&rng)?;
        let claims = assertion_claims(&cfg.client_id, aud, &jti, now);
        Ok(Proof::Assertion(sign_assertion(key, &claims, &rng)?))
    }

    /// The credentials to build the request with (`core::oidc::token_request`).
    pub fn credentials<'a>(&'a self, cfg: &'a OidcConfig) -> ClientCredentials<'a> {
        let proof = match (self, cfg.auth_method) {
            (Proof::Assertion(jwt), _) => ClientProof::Assertion(jwt),
            (Proof::Secret, ClientAuthMethod::ClientSecretBasic) => {
                ClientProof::SecretBasic(cfg.client_secret.expose())
            }
            (Proof::Secret, _) => ClientProof::SecretPost(cfg.client_secret.expose()),
        };
        ClientCredentials {
            client_id: &cfg.client_id,
            proof,
        }
    }
}
