//! The sinks of `ctrd-log-driver`, picked with the `sink` option.

pub mod cri;
pub mod journald;
pub mod json_file;
pub mod syslog;

use std::path::PathBuf;

use crate::options::Options;
use crate::rotate::Rotation;
use crate::{Driver, Error};

pub use cri::Cri;
pub use journald::Journald;
pub use json_file::JsonFile;
pub use syslog::Syslog;

/// The sink names `ctrd-log-driver` understands.
pub const SINKS: &[&str] = &["json-file", "cri", "journald", "syslog"];

/// Who the records belong to, for sinks that label them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// The container id.
    pub id: String,
    /// The containerd namespace.
    pub namespace: String,
}

/// Options of the file sinks: `path`, `max-size`, `max-file`, `compress` (Docker's names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    /// The log file.
    pub path: PathBuf,
    /// How it rotates.
    pub rotation: Rotation,
}

impl FileOptions {
    /// Reads the file sink options, checked as Docker checks them.
    pub fn from_options(options: &mut Options) -> Result<FileOptions, Error> {
        let path = PathBuf::from(options.required("path", "by the file sinks (json-file, cri)")?);
        if !path.is_absolute() {
            return Err(Error::BadOption {
                key: "path".into(),
                value: path.display().to_string(),
                expected: "an absolute path".into(),
            });
        }
        let max_size = options.size("max-size")?;
        if max_size == Some(0) {
            return Err(Error::BadOption {
                key: "max-size".into(),
                value: "0".into(),
                expected: "a positive size".into(),
            });
        }
        let max_file = options
            .parsed::<u32>("max-file", "a whole number of at least 1")?
            .unwrap_or(1);
        if max_file < 1 {
            return Err(Error::BadOption {
                key: "max-file".into(),
                value: max_file.to_string(),
                expected: "a whole number of at least 1".into(),
            });
        }
        let compress = options.boolean("compress")?.unwrap_or(false);
        if compress && (max_file < 2 || max_size.is_none()) {
            return Err(Error::Conflict(
                "compress=true needs max-size and a max-file of at least 2".into(),
            ));
        }
        Ok(FileOptions {
            path,
            rotation: Rotation {
                max_size,
                max_file,
                compress,
            },
        })
    }
}

/// Opens the sink the `sink` option names (default `json-file`), reading its options.
pub fn open(options: &mut Options, labels: &Labels) -> Result<Box<dyn Driver + Send>, Error> {
    let sink = options
        .choice(
            "sink",
            &[
                ("json-file", "json-file"),
                ("cri", "cri"),
                ("journald", "journald"),
                ("syslog", "syslog"),
            ],
        )?
        .unwrap_or("json-file");
    Ok(match sink {
        "cri" => Box::new(Cri::open(FileOptions::from_options(options)?)?),
        "journald" => Box::new(Journald::open(
            journald::JournaldOptions::from_options(options)?,
            labels,
        )?),
        "syslog" => Box::new(Syslog::open(
            syslog::SyslogOptions::from_options(options)?,
            labels,
        )?),
        _ => {
            let tag = options.string("tag");
            Box::new(JsonFile::with_tag(
                FileOptions::from_options(options)?,
                tag.as_deref(),
            )?)
        }
    })
}
