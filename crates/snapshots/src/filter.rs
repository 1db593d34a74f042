//! containerd's filter syntax, as `List` (and `ctr snapshots ls`) sends it.
//!
//! A filter is alternatives separated by `|`, each a `,`-separated list of selectors that must
//! all hold. A selector is a field path, optionally followed by an operator and a value:
//! `name==base`, `kind!=view`, `parent~="^sha256:"`, `labels."containerd.io/gc.root"`. Field
//! path parts are words (`[A-Za-z0-9_]+`) or `"quoted"` strings, joined by `.`; values are
//! bare (up to the next `,` or `|`), `"quoted"` or, for `~=`, `/a regular expression/`. A
//! selector without an operator holds when the field is present and not empty. Several filter
//! strings in one request are alternatives too; none at all matches everything.

use regex::Regex;

use crate::{Error, Info, Result};

/// A parsed filter, ready to match [`Info`]s.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Alternatives (`|`); each holds when all its selectors (`,`) hold. None matches all.
    alternatives: Vec<Vec<Selector>>,
}

#[derive(Debug, Clone)]
struct Selector {
    path: Vec<String>,
    op: Option<Op>,
}

#[derive(Debug, Clone)]
enum Op {
    Equal(String),
    NotEqual(String),
    Matches(Regex),
}

impl Filter {
    /// A filter that matches every snapshot.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Parses one filter string.
    pub fn parse(text: &str) -> Result<Filter> {
        Parser::new(text).filter()
    }

    /// Parses the filter strings of one request: a snapshot matches if any of them matches.
    pub fn parse_any<S: AsRef<str>>(texts: &[S]) -> Result<Filter> {
        let mut alternatives = Vec::new();
        for text in texts {
            alternatives.extend(Filter::parse(text.as_ref())?.alternatives);
        }
        Ok(Filter { alternatives })
    }

    /// Whether `info` matches.
    pub fn matches(&self, info: &Info) -> bool {
        self.alternatives.is_empty()
            || self
                .alternatives
                .iter()
                .any(|all| all.iter().all(|s| s.matches(info)))
    }
}

impl Selector {
    fn matches(&self, info: &Info) -> bool {
        let value = field(info, &self.path);
        match (&self.op, value) {
            (None, value) => value.is_some_and(|v| !v.is_empty()),
            (Some(Op::Equal(want)), value) => value == Some(want.as_str()),
            (Some(Op::NotEqual(want)), value) => value != Some(want.as_str()),
            (Some(Op::Matches(re)), Some(value)) => re.is_match(value),
            (Some(Op::Matches(_)), None) => false,
        }
    }
}

/// The value of the field at `path` of `info`, as containerd's snapshot adaptor defines it.
fn field<'a>(info: &'a Info, path: &[String]) -> Option<&'a str> {
    match path {
        [name] if name == "name" => Some(&info.name),
        [name] if name == "parent" => Some(info.parent.as_deref().unwrap_or("")),
        [name] if name == "kind" => Some(info.kind.as_str()),
        [labels, key @ ..] if labels == "labels" && !key.is_empty() => {
            info.labels.get(&key.join(".")).map(String::as_str)
        }
        _ => None,
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser { text, pos: 0 }
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Filter {
            filter: self.text.to_owned(),
            position: self.pos,
            reason: reason.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn filter(mut self) -> Result<Filter> {
        let mut alternatives = vec![self.selectors()?];
        while self.eat("|") {
            alternatives.push(self.selectors()?);
        }
        self.skip_space();
        if !self.rest().is_empty() {
            return Err(self.error("expected `,`, `|` or the end"));
        }
        Ok(Filter { alternatives })
    }

    fn selectors(&mut self) -> Result<Vec<Selector>> {
        let mut all = vec![self.selector()?];
        while self.eat(",") {
            all.push(self.selector()?);
        }
        Ok(all)
    }

    fn selector(&mut self) -> Result<Selector> {
        let mut path = vec![self.field()?];
        while self.eat(".") {
            path.push(self.field()?);
        }
        let op = if self.eat("==") {
            Some(Op::Equal(self.value()?))
        } else if self.eat("!=") {
            Some(Op::NotEqual(self.value()?))
        } else if self.eat("~=") {
            let start = self.pos;
            let pattern = self.value()?;
            let re = Regex::new(&pattern).map_err(|e| Error::Filter {
                filter: self.text.to_owned(),
                position: start,
                reason: format!("bad regular expression: {e}"),
            })?;
            Some(Op::Matches(re))
        } else {
            self.skip_space();
            match self.rest().chars().next() {
                None | Some(',') | Some('|') => None,
                Some(_) => return Err(self.error("expected an operator (==, != or ~=)")),
            }
        };
        Ok(Selector { path, op })
    }

    fn field(&mut self) -> Result<String> {
        self.skip_space();
        if self.rest().starts_with('"') {
            return self.quoted('"');
        }
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.error("expected a field name"));
        }
        let word = self.rest()[..len].to_owned();
        self.pos += len;
        Ok(word)
    }

    fn value(&mut self) -> Result<String> {
        self.skip_space();
        match self.rest().chars().next() {
            Some(q @ ('"' | '/')) => self.quoted(q),
            _ => {
                let len = self.rest().find([',', '|']).unwrap_or(self.rest().len());
                let value = self.rest()[..len].trim_end();
                if value.is_empty() {
                    return Err(self.error("expected a value"));
                }
                if value.contains(['"', '=', '!', '~']) {
                    return Err(self.error("unquoted value holds an operator or quote"));
                }
                self.pos += len;
                Ok(value.to_owned())
            }
        }
    }

    /// A string between `quote`s; `\` escapes the quote and itself (and, between `"`s,
    /// `\n`, `\t`).
    fn quoted(&mut self, quote: char) -> Result<String> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == quote => {
                    self.pos += i + c.len_utf8();
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) if quote == '"' => out.push('\n'),
                    Some((_, 't')) if quote == '"' => out.push('\t'),
                    Some((_, e)) if e == quote || e == '\\' => out.push(e),
                    // Kept as written: in a regular expression `\d` means what it says.
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        self.pos = start;
        Err(self.error(format!("unterminated {quote}...{quote} string")))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::Filter;
    use crate::{Info, Kind};

    fn info(name: &str, parent: Option<&str>, kind: Kind, labels: &[(&str, &str)]) -> Info {
        Info {
            name: name.into(),
            parent: parent.map(Into::into),
            kind,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn matches(filter: &str, info: &Info) -> bool {
        match Filter::parse(filter) {
            Ok(f) => f.matches(info),
            Err(e) => panic!("{filter}: {e}"),
        }
    }

    #[test]
    fn fields_and_operators() {
        let base = info(
            "base",
            None,
            Kind::Committed,
            &[("containerd.io/gc.root", "yes"), ("a", "1")],
        );
        assert!(matches("name==base", &base));
        assert!(matches("name == base", &base));
        assert!(!matches("name==other", &base));
        assert!(matches("name!=other", &base));
        assert!(matches("kind==committed", &base));
        assert!(matches("parent==\"\"", &base));
        assert!(matches("labels.\"containerd.io/gc.root\"==yes", &base));
        assert!(matches("labels.a", &base));
        assert!(!matches("labels.b", &base));
        assert!(!matches("parent", &base));
        assert!(matches("name~=^ba", &base));
        assert!(matches("name~=/^b.s\\w$/", &base));
        assert!(matches("name~=\"^bas\"", &base));
        assert!(!matches("name~=^as", &base));
    }

    #[test]
    fn and_or_and_many_strings() {
        let child = info("child", Some("base"), Kind::Active, &[("x", "1")]);
        assert!(matches("kind==active,parent==base", &child));
        assert!(!matches("kind==active,parent==other", &child));
        assert!(matches("kind==view|parent==base", &child));
        assert!(matches("kind==view,name==x|labels.x==1", &child));
        let Ok(any) = Filter::parse_any(&["name==nope", "name==child"]) else {
            panic!("parse_any failed");
        };
        assert!(any.matches(&child));
        assert!(Filter::all().matches(&child));
        let Ok(none) = Filter::parse_any::<&str>(&[]) else {
            panic!("empty filter list failed");
        };
        assert!(none.matches(&child));
    }

    #[test]
    fn malformed_filters_are_errors_with_positions() {
        for bad in [
            "",
            "name==",
            "name=base",
            "==base",
            "name==\"open",
            "labels.\"a",
            "name~=(",
            "name==a,",
            "name==a|",
            "name==a b\"",
            "kind===x",
        ] {
            let error = Filter::parse(bad).err();
            assert!(error.is_some(), "{bad:?} parsed");
            if let Some(e) = error {
                assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad:?}: {e}");
            }
        }
    }
}
