//! Who is asking. Always decided on the server side: from a verified token, or from a
//! verified authenticating proxy, never from what a client says about itself.

use std::collections::BTreeMap;

pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserInfo {
    pub username: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> Self {
        Self {
            username: ANONYMOUS.into(),
            uid: None,
            groups: vec![UNAUTHENTICATED.into()],
            extra: BTreeMap::new(),
        }
    }

    /// An authenticated user, with `system:authenticated` added as the apiserver does.
    pub fn authenticated(username: String, uid: Option<String>, mut groups: Vec<String>) -> Self {
        if !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.into());
        }
        Self {
            username,
            uid,
            groups,
            extra: BTreeMap::new(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.username == ANONYMOUS
    }
}

/// Set by the TLS server on connections whose client certificate a trusted proxy CA signed
/// for an allowed common name (see [`super::proxy`]).
pub use super::proxy::VerifiedProxy;
