//! Registry authentication: the `WWW-Authenticate` challenge a registry answers 401 with, and
//! the bearer-token request it sends clients to.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `user` and `password` for a registry (`--user USER:PASSWORD`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password (or a personal access token).
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Splits `USER:PASSWORD` at its first colon; `None` without one.
    pub fn parse(text: &str) -> Option<Credentials> {
        let (user, password) = text.split_once(':')?;
        Some(Credentials::new(user, password))
    }

    /// The value of an `Authorization` header for HTTP basic auth.
    pub(crate) fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.user, self.password);
        format!("Basic {}", STANDARD.encode(pair))
    }
}

/// What a registry asks for in a 401's `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="..."`.
    Basic,
    /// `Bearer realm="...",service="...",scope="..."`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses one challenge; `None` for schemes we do not speak.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parameters(rest);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// `key="value",key=value,...` (quoted values may hold commas and escaped quotes).
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_owned(), value.trim().to_owned()));
    }
}

/// The token endpoint's answer (`token`, or OAuth2's `access_token`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
}

impl TokenAnswer {
    pub(crate) fn into_token(self) -> Option<String> {
        [self.token, self.access_token]
            .into_iter()
            .find(|t| !t.is_empty())
    }
}

/// The URL to fetch a token from for `challenge` (realm with `service` and `scope`).
pub(crate) fn token_url(realm: &str, service: Option<&str>, scope: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(service) = service {
        query.append_pair("service", service);
    }
    if let Some(scope) = scope {
        query.append_pair("scope", scope);
    }
    let query = query.finish();
    if query.is_empty() {
        realm.to_owned()
    } else if realm.contains('?') {
        format!("{realm}&{query}")
    } else {
        format!("{realm}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::{Challenge, Credentials, token_url};

    #[test]
    fn bearer_challenges_give_realm_service_and_scope() {
        let c = Challenge::parse(
            r#"Bearer realm="http://127.0.0.1:9/token",service="reg",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:9/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(
            token_url("http://h/token", Some("reg"), Some("repository:a/b:pull")),
            "http://h/token?service=reg&scope=repository%3Aa%2Fb%3Apull"
        );
    }

    #[test]
    fn credentials_split_at_the_first_colon_and_hide_the_password() {
        let c = Credentials::parse("me:pa:ss").expect("parse");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("me", "pa:ss"));
        assert!(!format!("{c:?}").contains("pa:ss"));
        assert!(Credentials::parse("me").is_none());
        assert_eq!(c.basic_header(), "Basic bWU6cGE6c3M=");
    }
}
