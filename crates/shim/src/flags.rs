//! The command line containerd gives a shim, in Go's flag syntax (`-name value`,
//! `-name=value`, `--name value`, boolean `-debug`), followed by the action.

use std::path::PathBuf;

use crate::Error;

/// What containerd asked the shim binary to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Launch (or reuse) a serving shim and print its address.
    Start,
    /// Clean up after a dead shim and print a `DeleteResponse`.
    Delete,
    /// Serve the task API (the long-running shim; no action word).
    Serve,
    /// Print the version (`-v`).
    Version,
    /// Print runtime information (`-info`).
    Info,
}

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// containerd namespace (`-namespace`).
    pub namespace: String,
    /// Container or group id (`-id`).
    pub id: String,
    /// containerd's gRPC socket (`-address`).
    pub address: String,
    /// containerd binary used to publish events when ttrpc fails (`-publish-binary`).
    pub publish_binary: String,
    /// Bundle folder (`-bundle`; by default the working folder).
    pub bundle: Option<PathBuf>,
    /// Socket path for a serving shim (`-socket`).
    pub socket: Option<String>,
    /// Debug logging (`-debug`).
    pub debug: bool,
    /// The action.
    pub action: Action,
}

impl Flags {
    /// Parses `args` (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Flags, Error> {
        let mut flags = Flags {
            namespace: String::new(),
            id: String::new(),
            address: String::new(),
            publish_binary: String::new(),
            bundle: None,
            socket: None,
            debug: false,
            action: Action::Serve,
        };
        let mut args = args.into_iter();
        let mut positional = Vec::new();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                positional.push(arg);
                continue;
            };
            if name.is_empty() {
                positional.extend(args.by_ref());
                break;
            }
            let (name, inline) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (name.to_owned(), None),
            };
            let mut value = |flag: &str| -> Result<String, Error> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| Error::Usage(format!("flag -{flag} needs a value")))
            };
            match name.as_str() {
                "namespace" => flags.namespace = value("namespace")?,
                "id" => flags.id = value("id")?,
                "address" => flags.address = value("address")?,
                "publish-binary" => flags.publish_binary = value("publish-binary")?,
                "bundle" => flags.bundle = Some(PathBuf::from(value("bundle")?)),
                "socket" => flags.socket = Some(value("socket")?),
                "debug" => flags.debug = bool_value(&name, inline.as_deref())?,
                "v" | "version" => flags.action = Action::Version,
                "info" => flags.action = Action::Info,
                other => return Err(Error::Usage(format!("unknown flag -{other}"))),
            }
        }
        match positional.first().map(String::as_str) {
            None => {}
            Some("start") => flags.action = Action::Start,
            Some("delete") => flags.action = Action::Delete,
            Some(other) => return Err(Error::Usage(format!("unknown action {other:?}"))),
        }
        if matches!(flags.action, Action::Start | Action::Delete | Action::Serve) {
            if flags.namespace.is_empty() {
                return Err(Error::Usage("-namespace is required".into()));
            }
            if flags.id.is_empty() {
                return Err(Error::Usage("-id is required".into()));
            }
            crate::identifier::validate("namespace", &flags.namespace)?;
            crate::identifier::validate("id", &flags.id)?;
        }
        Ok(flags)
    }

    /// The arguments that start a serving shim with the same identity.
    pub fn serve_args(&self) -> Vec<String> {
        let mut args = vec![
            "-namespace".to_owned(),
            self.namespace.clone(),
            "-id".to_owned(),
            self.id.clone(),
            "-address".to_owned(),
            self.address.clone(),
        ];
        if !self.publish_binary.is_empty() {
            args.extend(["-publish-binary".to_owned(), self.publish_binary.clone()]);
        }
        if self.debug {
            args.push("-debug".to_owned());
        }
        args
    }
}

fn bool_value(name: &str, inline: Option<&str>) -> Result<bool, Error> {
    match inline {
        None | Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Ok(true),
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(Error::Usage(format!("-{name}={other} is not a boolean"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, Error> {
        Flags::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn containerd_16_start_line() {
        let f = parse(&[
            "-namespace",
            "default",
            "-address",
            "/run/c.sock",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "c1",
            "start",
        ])
        .expect("parse");
        assert_eq!(f.action, Action::Start);
        assert_eq!((f.namespace.as_str(), f.id.as_str()), ("default", "c1"));
        assert_eq!(f.publish_binary, "/usr/bin/containerd");
    }

    #[test]
    fn delete_with_bundle_and_go_flag_forms() {
        let f = parse(&[
            "--namespace=k8s.io",
            "-id=c2",
            "-address",
            "/a",
            "-bundle",
            "/b",
            "-debug",
            "delete",
        ])
        .expect("parse");
        assert_eq!(f.action, Action::Delete);
        assert_eq!(f.bundle, Some(PathBuf::from("/b")));
        assert!(f.debug);
        assert!(parse(&["-namespace", "n", "-id", "x", "-debug=false"]).is_ok_and(|f| !f.debug));
    }

    #[test]
    fn version_and_info_need_no_identity() {
        assert_eq!(parse(&["-v"]).expect("v").action, Action::Version);
        assert_eq!(parse(&["-info"]).expect("info").action, Action::Info);
    }

    #[test]
    fn bad_lines_are_usage_errors() {
        assert!(parse(&["-id", "x", "start"]).is_err(), "no namespace");
        assert!(parse(&["-namespace", "n", "-id", "x", "frobnicate"]).is_err());
        assert!(parse(&["-namespace", "n", "-id"]).is_err(), "missing value");
        assert!(parse(&["-namespace", "n", "-id", "x", "-nope"]).is_err());
    }
}
