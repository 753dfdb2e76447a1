//! Opaque `continue` tokens: the keyset position plus a digest of the query the page belongs to.
//! A token replayed against other namespaces, filters or sort order is refused; a token grants
//! nothing by itself, since every page is authorized again.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContinueError {
    #[error("the continue token is malformed")]
    Malformed,
    #[error(
        "the continue token belongs to a different query (namespaces, filters or sort changed); start again without it"
    )]
    WrongQuery,
}

#[derive(Serialize, Deserialize)]
struct Token<C> {
    v: u8,
    /// First 16 bytes of the query digest, hex.
    q: String,
    p: C,
}

/// A digest of everything that defines a list: route, namespaces and filters.
pub fn query_digest(parts: &impl std::fmt::Debug) -> String {
    let digest = Sha256::digest(format!("{parts:?}").as_bytes());
    hex::encode(&digest[..16])
}

pub fn encode<C: Serialize>(digest: &str, position: &C) -> String {
    let token = Token {
        v: 1,
        q: digest.to_owned(),
        p: position,
    };
    // Plain data: serialization cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
}

pub fn decode<C: DeserializeOwned>(token: &str, digest: &str) -> Result<C, ContinueError> {
    if token.len() > 4096 {
        return Err(ContinueError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| ContinueError::Malformed)?;
    let token: Token<C> = serde_json::from_slice(&bytes).map_err(|_| ContinueError::Malformed)?;
    if token.v != 1 {
        return Err(ContinueError::Malformed);
    }
    if token.q != digest {
        return Err(ContinueError::WrongQuery);
    }
    Ok(token.p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_queries() {
        let d1 = query_digest(&("assets", ["team-a"], Some("llm")));
        let d2 = query_digest(&("assets", ["team-b"], Some("llm")));
        let token = encode(&d1, &(7i64, "x".to_string()));
        assert_eq!(
            decode::<(i64, String)>(&token, &d1).unwrap(),
            (7, "x".into())
        );
        assert_eq!(
            decode::<(i64, String)>(&token, &d2),
            Err(ContinueError::WrongQuery)
        );
        assert_eq!(
            decode::<(i64, String)>("%%%", &d1),
            Err(ContinueError::Malformed)
        );
        assert_eq!(
            decode::<(i64, String)>("e30", &d1),
            Err(ContinueError::Malformed)
        );
    }
}
