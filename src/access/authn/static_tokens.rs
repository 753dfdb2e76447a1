//! kube-apiserver's `--token-auth-file` format: `token,user,uid[,"group1,group2"]` per line.

use std::{collections::HashMap, path::Path};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{Authenticator, AuthnError};
use crate::access::identity::UserInfo;

#[derive(Debug, thiserror::Error)]
pub enum StaticTokenError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("token file line {line}: {message}")]
    Line { line: usize, message: String },
}

/// Tokens are kept only as SHA-256 digests, so a heap dump does not leak them.
#[derive(Clone, Debug, Default)]
pub struct StaticTokens {
    users: HashMap<[u8; 32], UserInfo>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Splits one CSV line, honouring double quotes (the groups column is quoted).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                if let Some(f) = fields.last_mut() {
                    f.push('"');
                }
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c)
                }
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    Ok(fields)
}

impl StaticTokens {
    pub fn parse(text: &str) -> Result<Self, StaticTokenError> {
        let mut users = HashMap::new();
        for (line, token, user) in entries(text)? {
            if users.insert(digest(&token), user).is_some() {
                return Err(StaticTokenError::Line {
                    line,
                    message: "duplicate token".into(),
                });
            }
        }
        Ok(Self { users })
    }
}

/// The file's lines as (line number, token, user), in order: the users' own credentials, for a
/// kubeconfig standalone writes beside its data.
pub fn entries(text: &str) -> Result<Vec<(usize, String, UserInfo)>, StaticTokenError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: String| StaticTokenError::Line {
            line: i + 1,
            message,
        };
        let fields = csv_fields(line).map_err(fail)?;
        if fields.len() < 3 {
            return Err(fail("expected token,user,uid[,\"groups\"]".into()));
        }
        let (token, user, uid) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        if token.is_empty() || user.is_empty() {
            return Err(fail("token and user must not be empty".into()));
        }
        let groups = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let uid = (!uid.is_empty()).then(|| uid.to_owned());
        out.push((
            i + 1,
            token.to_owned(),
            UserInfo::authenticated(user.into(), uid, groups),
        ));
    }
    Ok(out)
}

impl StaticTokens {
    pub fn load(path: &Path) -> Result<Self, StaticTokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| StaticTokenError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Every user in the file, sorted by name (for the standalone banner).
    pub fn users(&self) -> Vec<UserInfo> {
        let mut users: Vec<UserInfo> = self.users.values().cloned().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users
    }

    /// The user names in the file, sorted (for the standalone banner).
    pub fn usernames(&self) -> Vec<String> {
        let mut names: Vec<String> = self.users.values().map(|u| u.username.clone()).collect();
        names.sort();
        names
    }
}

#[async_trait]
impl Authenticator for StaticTokens {
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, AuthnError> {
        Ok(self.users.get(&digest(token)).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_the_token_auth_file_format() {
        let tokens =
            StaticTokens::parse("# comment\nt1,alice,1001,\"team-a-admins,devs\"\nt2,bob,1002\n")
                .unwrap();
        let alice = tokens.authenticate("t1").await.unwrap().unwrap();
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.uid.as_deref(), Some("1001"));
        assert_eq!(
            alice.groups,
            ["team-a-admins", "devs", "system:authenticated"]
        );
        let bob = tokens.authenticate("t2").await.unwrap().unwrap();
        assert_eq!(bob.groups, ["system:authenticated"]);
        assert!(tokens.authenticate("nope").await.unwrap().is_none());
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = StaticTokens::parse("t1,alice,1\nonly-a-token\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        assert!(StaticTokens::parse("t,a,1\nt,b,2\n").is_err());
    }
}
