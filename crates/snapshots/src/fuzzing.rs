//! Entry points for the fuzz targets under `fuzz/` in the repository: a `Snapshots` request
//! decoded and checked as the service and the store check it, and containerd's filter syntax.
//! Not part of the API.

use std::time::SystemTime;

use ctrd_api::containerd::services::snapshots::v1 as api;
use prost::Message;

use crate::store::{check_key, check_labels};
use crate::{Filter, Info, Kind, Labels};

/// The `Snapshots` methods [`request`] decodes.
pub const METHODS: &[&str] = &[
    "Prepare", "View", "Mounts", "Commit", "Remove", "Stat", "Update", "List", "Usage",
];

/// A request for `method` with `payload` as its message: decoded as tonic decodes it, then its
/// keys, labels and filters checked as the store checks them.
pub fn request(method: &str, payload: &[u8]) {
    let checked = |key: &str, labels: &Labels| check_key(key).and_then(|()| check_labels(labels));
    match method {
        "Prepare" => {
            if let Ok(r) = api::PrepareSnapshotRequest::decode(payload) {
                let _ = checked(&r.key, &r.labels);
                let _ = check_key(&r.parent);
            }
        }
        "View" => {
            if let Ok(r) = api::ViewSnapshotRequest::decode(payload) {
                let _ = checked(&r.key, &r.labels);
            }
        }
        "Mounts" => drop(api::MountsRequest::decode(payload).map(|r| check_key(&r.key))),
        "Commit" => {
            if let Ok(r) = api::CommitSnapshotRequest::decode(payload) {
                let _ = checked(&r.name, &r.labels);
                let _ = check_key(&r.key);
                // `parent` (containerd 2.2+): the parent to commit onto, empty for none.
                if !r.parent.is_empty() {
                    let _ = check_key(&r.parent);
                }
            }
        }
        "Remove" => drop(api::RemoveSnapshotRequest::decode(payload).map(|r| check_key(&r.key))),
        "Stat" => drop(api::StatSnapshotRequest::decode(payload).map(|r| check_key(&r.key))),
        "Update" => {
            if let Ok(r) = api::UpdateSnapshotRequest::decode(payload)
                && let Some(info) = r.info
            {
                let _ = checked(&info.name, &info.labels);
            }
        }
        "List" => {
            if let Ok(r) = api::ListSnapshotsRequest::decode(payload) {
                filter_strings(&r.filters);
            }
        }
        "Usage" => drop(api::UsageRequest::decode(payload).map(|r| check_key(&r.key))),
        _ => {}
    }
}

/// Filter strings as `List` gets them: parsed, then matched against a few snapshots.
pub fn filter_strings<S: AsRef<str>>(filters: &[S]) {
    let Ok(filter) = Filter::parse_any(filters) else {
        return;
    };
    let now = SystemTime::now();
    let mut labels = Labels::new();
    labels.insert("containerd.io/gc.root".into(), "2024".into());
    labels.insert("a.b".into(), "c,d|e".into());
    for (name, parent, kind) in [
        ("default/1/base", None, Kind::Committed),
        ("sha256:0123", Some("default/1/base"), Kind::Active),
        ("view \"x\"", Some("sha256:0123"), Kind::View),
    ] {
        let info = Info {
            name: name.into(),
            parent: parent.map(str::to_owned),
            kind,
            labels: labels.clone(),
            created_at: now,
            updated_at: now,
        };
        let _ = filter.matches(&info);
    }
}
