//! Bearer tokens from configuration, stored as SHA-256 hashes, with roles; and the
//! [`Caller`] extractor that checks them before a handler runs.
//!
//! A request presents its token as `Authorization: Bearer <token>` or, as Coder's clients
//! do, `Coder-Session-Token: <token>`. The SHA-256 of the presented token is compared with
//! every configured hash in constant time, so neither the match nor its position leaks
//! through timing. Roles: `auditor` sees every row; `org_auditor` sees only its listed
//! organizations, which the SQL enforces; `member` is authenticated but gets 403. Any
//! other role, a duplicate name or hash, an empty name, or `organizations` on a role that
//! ignores them stops the server at start-up.

use std::sync::Arc;

use auditlog_query::Visibility;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::{ApiError, Error};

/// The role that sees every row.
pub const ROLE_AUDITOR: &str = "auditor";
/// The role that sees only its organizations' rows.
pub const ROLE_ORG_AUDITOR: &str = "org_auditor";
/// A known role that may not read audit logs (403), as in Coder.
pub const ROLE_MEMBER: &str = "member";

/// Coder's clients send the token in this header.
const CODER_SESSION_TOKEN_HEADER: &str = "coder-session-token";

/// One configured bearer token, as the operator wrote it: what [`Authenticator::try_new`]
/// validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredToken {
    /// Who holds it (shown in logs; `username:me` resolves to it).
    pub name: String,
    /// Hex SHA-256 of the token (the server never stores the token itself).
    pub sha256: String,
    /// [`ROLE_AUDITOR`], [`ROLE_ORG_AUDITOR`] or [`ROLE_MEMBER`]; anything else is rejected.
    pub role: String,
    /// Organization ids an `org_auditor` may see.
    pub organizations: Vec<Uuid>,
}

/// Who is asking, once authenticated and authorized.
///
/// As a handler argument it is the check itself: a request without a valid auditor token
/// is answered 401 or 403 before the handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (what `username:me` means); `None` on an open server.
    pub name: Option<String>,
    /// The rows this caller may see.
    pub visibility: Visibility,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Auditor,
    OrgAuditor(Vec<Uuid>),
    /// May not read audit logs.
    Member,
}

struct Credential {
    name: String,
    sha256: [u8; 32],
    role: Role,
}

/// Ends [`Authenticator::try_new`] with a reason that names the entry, for the operator.
macro_rules! reject {
    ($($reason:tt)*) => {
        return Err(Error::InvalidToken(format!($($reason)*)))
    };
}

/// Checks tokens; with none configured the API is open (the caller must be on loopback).
pub struct Authenticator {
    credentials: Vec<Credential>,
}

impl std::fmt::Debug for Authenticator {
    // Hashes are not secrets, but a log has no use for them.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .credentials
            .iter()
            .map(|credential| credential.name.as_str())
            .collect();
        formatter
            .debug_struct("Authenticator")
            .field("token_names", &names)
            .finish()
    }
}

impl Authenticator {
    /// Validates the configured tokens; an error names the entry (`api.tokens[i]`) and why.
    ///
    /// Each hash is 64 hex digits and unique (two entries with one hash would make one
    /// token mean two callers), each name non-empty (`username:me` would match every
    /// event without an actor) and unique, each role known, and only an `org_auditor`
    /// lists organizations (any other role would ignore them).
    pub fn try_new(tokens: &[ConfiguredToken]) -> Result<Self, Error> {
        let mut credentials: Vec<Credential> = Vec::with_capacity(tokens.len());
        for (index, token) in tokens.iter().enumerate() {
            let entry = format!("api.tokens[{index}] (name {:?})", token.name);
            if token.name.trim().is_empty() {
                reject!(
                    "api.tokens[{index}]: the name is empty; every token needs one (it is what username:me means)"
                );
            }
            let bytes = hex::decode(token.sha256.trim()).map_err(|error| {
                Error::InvalidToken(format!("{entry}: sha256 is not hex: {error}"))
            })?;
            let Ok(sha256) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                reject!(
                    "{entry}: sha256 must be 64 hex digits, found {}",
                    bytes.len() * 2
                );
            };
            if let Some(known) = credentials
                .iter()
                .position(|known| known.name == token.name)
            {
                reject!("{entry}: the name is already used by api.tokens[{known}]");
            }
            if let Some(known) = credentials.iter().position(|known| known.sha256 == sha256) {
                reject!(
                    "{entry}: the sha256 is the same as api.tokens[{known}] (name {:?}): one token cannot be two callers",
                    credentials[known].name
                );
            }
            if !token.organizations.is_empty() && token.role != ROLE_ORG_AUDITOR {
                reject!(
                    "{entry}: role {:?} ignores `organizations`; remove them, or use role = \"{ROLE_ORG_AUDITOR}\" to limit the token to them",
                    token.role
                );
            }
            let role = match token.role.as_str() {
                ROLE_AUDITOR => Role::Auditor,
                ROLE_ORG_AUDITOR => {
                    if token.organizations.is_empty() {
                        tracing::warn!(token = %token.name, "org_auditor token lists no organizations: it sees nothing");
                    }
                    Role::OrgAuditor(token.organizations.clone())
                }
                ROLE_MEMBER => Role::Member,
                other => reject!(
                    "{entry}: unknown role {other:?}; expected \"{ROLE_AUDITOR}\", \"{ROLE_ORG_AUDITOR}\" or \"{ROLE_MEMBER}\""
                ),
            };
            credentials.push(Credential {
                name: token.name.clone(),
                sha256,
                role,
            });
        }
        Ok(Self { credentials })
    }

    /// Whether no token is configured, so every request is let in as an auditor.
    pub fn is_open(&self) -> bool {
        self.credentials.is_empty()
    }

    /// The caller behind a request, or the 401/403 to answer.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        if self.is_open() {
            return Ok(Caller {
                name: None,
                visibility: Visibility::All,
            });
        }
        let token = presented_token(headers)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Look at every credential whatever matches, so timing says nothing.
        let mut matched: Option<&Credential> = None;
        for credential in &self.credentials {
            if bool::from(credential.sha256.ct_eq(&digest)) {
                matched = Some(credential);
            }
        }
        let Some(credential) = matched else {
            return Err(ApiError::Unauthenticated {
                detail: "The token is not valid.",
            });
        };
        let visibility = match &credential.role {
            Role::Auditor => Visibility::All,
            Role::OrgAuditor(organizations) => Visibility::Organizations(organizations.clone()),
            Role::Member => return Err(ApiError::Forbidden),
        };
        Ok(Caller {
            name: Some(credential.name.clone()),
            visibility,
        })
    }
}

fn presented_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let malformed = ApiError::Unauthenticated {
        detail: "The Authorization header must be \"Bearer <token>\".",
    };
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let Ok(text) = value.to_str() else {
            return Err(malformed);
        };
        let Some((scheme, token)) = text.trim().split_once(' ') else {
            return Err(malformed);
        };
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(malformed);
        }
        return Ok(token);
    }
    if let Some(value) = headers.get(CODER_SESSION_TOKEN_HEADER) {
        return match value.to_str() {
            Ok(token) if !token.trim().is_empty() => Ok(token.trim()),
            _ => Err(ApiError::Unauthenticated {
                detail: "The Coder-Session-Token header is empty or not text.",
            }),
        };
    }
    Err(ApiError::Unauthenticated {
        detail: "A token must be provided: \"Authorization: Bearer <token>\" or \"Coder-Session-Token: <token>\".",
    })
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Arc::<Authenticator>::from_ref(state).authenticate(&parts.headers)
    }
}

/// The lowercase hex SHA-256 of a token: what `[[api.tokens]] sha256` holds
/// (`printf %s "$TOKEN" | sha256sum` computes the same).
#[cfg(test)]
pub(crate) fn token_sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn token(name: &str, secret: &str, role: &str, organizations: Vec<Uuid>) -> ConfiguredToken {
        ConfiguredToken {
            name: name.to_owned(),
            sha256: token_sha256_hex(secret),
            role: role.to_owned(),
            organizations,
        }
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn roles_decide_visibility() {
        let org = Uuid::from_u128(5);
        let auth = Authenticator::try_new(&[
            token("ann", "s1", "auditor", vec![]),
            token("olga", "s2", "org_auditor", vec![org]),
            token("mel", "s3", "member", vec![]),
        ])
        .unwrap();
        assert_eq!(
            auth.authenticate(&headers("authorization", "Bearer s1"))
                .unwrap(),
            Caller {
                name: Some("ann".to_owned()),
                visibility: Visibility::All
            }
        );
        assert_eq!(
            auth.authenticate(&headers("coder-session-token", "s2"))
                .unwrap()
                .visibility,
            Visibility::Organizations(vec![org])
        );
        assert!(matches!(
            auth.authenticate(&headers("authorization", "bearer s3")),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            auth.authenticate(&headers("authorization", "Bearer nope")),
            Err(ApiError::Unauthenticated { .. })
        ));
        assert!(matches!(
            auth.authenticate(&headers("authorization", "Basic s1")),
            Err(ApiError::Unauthenticated { .. })
        ));
        assert!(matches!(
            auth.authenticate(&HeaderMap::new()),
            Err(ApiError::Unauthenticated { .. })
        ));
    }

    fn rejection(tokens: &[ConfiguredToken]) -> String {
        Authenticator::try_new(tokens).unwrap_err().to_string()
    }

    #[test]
    fn a_hash_that_is_not_64_hex_digits_is_rejected() {
        let mut bad = token("x", "s", "auditor", vec![]);
        bad.sha256 = "abc".to_owned();
        assert!(rejection(&[bad]).starts_with("api.tokens[0] (name \"x\"): sha256"));
        assert!(Authenticator::try_new(&[]).unwrap().is_open());
    }

    #[test]
    fn a_name_used_twice_is_rejected() {
        let twice = [
            token("x", "a", "auditor", vec![]),
            token("x", "b", "auditor", vec![]),
        ];
        assert_eq!(
            rejection(&twice),
            "api.tokens[1] (name \"x\"): the name is already used by api.tokens[0]"
        );
    }

    #[test]
    fn a_hash_used_twice_is_rejected_whatever_its_case() {
        let org = Uuid::from_u128(5);
        let mut auditor = token("ann", "same-secret", "auditor", vec![]);
        auditor.sha256 = auditor.sha256.to_uppercase();
        let twice = [
            token("olga", "same-secret", "org_auditor", vec![org]),
            auditor,
        ];
        assert_eq!(
            rejection(&twice),
            "api.tokens[1] (name \"ann\"): the sha256 is the same as api.tokens[0] (name \"olga\"): one token cannot be two callers"
        );
    }

    #[test]
    fn an_empty_name_is_rejected() {
        let tokens = [
            token("ann", "a", "auditor", vec![]),
            token(" ", "b", "auditor", vec![]),
        ];
        assert_eq!(
            rejection(&tokens),
            "api.tokens[1]: the name is empty; every token needs one (it is what username:me means)"
        );
    }

    #[test]
    fn an_unknown_role_is_rejected() {
        let tokens = [token("root", "a", "admin", vec![])];
        assert_eq!(
            rejection(&tokens),
            "api.tokens[0] (name \"root\"): unknown role \"admin\"; expected \"auditor\", \"org_auditor\" or \"member\""
        );
    }

    #[test]
    fn organizations_on_a_role_that_ignores_them_are_rejected() {
        let org = Uuid::from_u128(5);
        for role in ["auditor", "member"] {
            let tokens = [token("ann", "a", role, vec![org])];
            assert_eq!(
                rejection(&tokens),
                format!(
                    "api.tokens[0] (name \"ann\"): role \"{role}\" ignores `organizations`; remove them, or use role = \"org_auditor\" to limit the token to them"
                )
            );
        }
        assert!(Authenticator::try_new(&[token("olga", "a", "org_auditor", vec![org])]).is_ok());
    }
}
