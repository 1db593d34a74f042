//! The driver's options: the URI query's `key=value` pairs, which the shim passes as
//! `key value` argument pairs (in no stable order), read into typed values with errors that
//! name the option, the value and what was expected.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::str::FromStr;
use std::time::Duration;

use crate::Error;

/// The options given to a driver, taken one by one by the code that understands them.
///
/// Every getter records the key it was asked for; [`Options::finish`] then rejects any key
/// nobody asked for, listing the ones that were.
#[derive(Debug, Default)]
pub struct Options {
    pairs: Vec<(String, String)>,
    used: Vec<bool>,
    asked: BTreeSet<&'static str>,
}

impl Options {
    /// Reads `key value` pairs, such as the driver's arguments after the program name.
    pub fn from_args<I, S>(args: I) -> Result<Options, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args = args
            .into_iter()
            .map(|a| {
                a.into().into_string().map_err(|a| Error::NotUtf8 {
                    arg: a.to_string_lossy().into_owned(),
                })
            })
            .collect::<Result<Vec<String>, Error>>()?;
        if args.len() % 2 != 0 {
            return Err(Error::OddArguments { args });
        }
        let mut options = Options::default();
        for pair in args.chunks_exact(2) {
            let (key, value) = (pair[0].clone(), pair[1].clone());
            if options.pairs.iter().any(|(k, _)| *k == key) {
                return Err(Error::DuplicateOption { key });
            }
            options.pairs.push((key, value));
            options.used.push(false);
        }
        Ok(options)
    }

    /// The raw value of `key`, if given.
    pub fn get(&mut self, key: &'static str) -> Option<&str> {
        self.asked.insert(key);
        let index = self.pairs.iter().position(|(k, _)| k == key)?;
        self.used[index] = true;
        Some(self.pairs[index].1.as_str())
    }

    /// Whether `key` was given (without marking it used).
    pub fn contains(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// The value of `key` as a string.
    pub fn string(&mut self, key: &'static str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }

    /// The value of `key`, which must be given.
    pub fn required(&mut self, key: &'static str, why: &'static str) -> Result<String, Error> {
        self.string(key).ok_or(Error::MissingOption { key, why })
    }

    /// The value of `key` parsed with [`FromStr`]; `expected` describes a good value.
    pub fn parsed<T: FromStr>(
        &mut self,
        key: &'static str,
        expected: &str,
    ) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| bad(key, v, expected)),
        }
    }

    /// A size as Docker reads `max-size` (decimal units, as Go's `units.FromHumanSize`):
    /// `1024`, `10k`, `10m`, `1.5g`, with optional `b`/`B` (`10MB`).
    pub fn size(&mut self, key: &'static str) -> Result<Option<u64>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_size(v)
                .map(Some)
                .ok_or_else(|| bad(key, v, "a size such as 512k, 10m or 1g (decimal units)")),
        }
    }

    /// A boolean as Go's `strconv.ParseBool` reads it (`1`, `t`, `true`, `0`, `f`, `false`, ...).
    pub fn boolean(&mut self, key: &'static str) -> Result<Option<bool>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Some(false)),
                _ => Err(bad(key, v, "true or false")),
            },
        }
    }

    /// A duration: a number with `ms`, `s` or `m`, such as `500ms` or `10s`.
    pub fn duration(&mut self, key: &'static str) -> Result<Option<Duration>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .ok_or_else(|| bad(key, v, "a duration such as 500ms, 10s or 1m")),
        }
    }

    /// One of `choices` (name and value).
    pub fn choice<T: Copy>(
        &mut self,
        key: &'static str,
        choices: &[(&str, T)],
    ) -> Result<Option<T>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => choices
                .iter()
                .find(|(name, _)| *name == v)
                .map(|(_, value)| Some(*value))
                .ok_or_else(|| {
                    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                    bad(key, v, &format!("one of {}", names.join(", ")))
                }),
        }
    }

    /// Fails on any option no getter asked for.
    pub fn finish(self) -> Result<(), Error> {
        match self.used.iter().position(|used| !used) {
            None => Ok(()),
            Some(i) => Err(Error::UnknownOption {
                key: self.pairs[i].0.clone(),
                known: self.asked.iter().copied().collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

fn bad(key: &str, value: &str, expected: &str) -> Error {
    Error::BadOption {
        key: key.to_owned(),
        value: value.to_owned(),
        expected: expected.to_owned(),
    }
}

/// Parses a size in decimal units (`k` = 1000), as Docker's `max-size`.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let multiplier: f64 = match unit {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "p" => 1e15,
        _ => return None,
    };
    let bytes = number * multiplier;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let n: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(n * scale).ok()
}

#[cfg(test)]
mod tests {
    use super::{Options, parse_size};
    use crate::Error;

    #[test]
    fn sizes_read_as_docker_reads_max_size() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10k"), Some(10_000));
        assert_eq!(parse_size("10m"), Some(10_000_000));
        assert_eq!(parse_size("10MB"), Some(10_000_000));
        assert_eq!(parse_size("1.5g"), Some(1_500_000_000));
        assert_eq!(parse_size("10 kb"), Some(10_000));
        assert_eq!(parse_size("m"), None);
        assert_eq!(parse_size("10x"), None);
        assert_eq!(parse_size("-1"), None);
    }

    #[test]
    fn options_are_typed_and_unknown_ones_named() {
        let mut o = Options::from_args(["max-size", "10m", "compress", "true", "colour", "red"])
            .expect("pairs");
        assert_eq!(o.size("max-size").expect("size"), Some(10_000_000));
        assert_eq!(o.boolean("compress").expect("bool"), Some(true));
        let err = o.finish().expect_err("colour is unknown");
        assert!(
            matches!(&err, Error::UnknownOption { key, known } if key == "colour" && known == "compress, max-size"),
            "{err}"
        );

        let mut o = Options::from_args(["max-file", "many"]).expect("pairs");
        let err = o
            .parsed::<u32>("max-file", "a whole number")
            .expect_err("bad");
        assert_eq!(
            err.to_string(),
            "option max-file=\"many\" is invalid: expected a whole number"
        );

        assert!(matches!(
            Options::from_args(["a"]),
            Err(Error::OddArguments { .. })
        ));
        assert!(matches!(
            Options::from_args(["a", "1", "a", "2"]),
            Err(Error::DuplicateOption { .. })
        ));
    }
}
