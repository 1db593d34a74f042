//! What the daemon is: its version and plugins.

use ctrd_api::containerd::services::introspection::v1::PluginsRequest;

use crate::{Client, Error};

/// The daemon's version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Version {
    /// The release, such as `1.6.20~ds1`.
    pub version: String,
    /// The source revision.
    pub revision: String,
}

/// One plugin the daemon loaded (or failed to load).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plugin {
    /// Its type, such as `io.containerd.snapshotter.v1`.
    pub kind: String,
    /// Its id, such as `overlayfs`.
    pub id: String,
    /// Why it failed to initialise, if it did.
    pub error: Option<String>,
}

impl Client {
    /// The daemon's version and revision.
    pub async fn server_version(&self) -> Result<Version, Error> {
        let v = self
            .unary("version.Version", "of the daemon", async {
                self.version().version(()).await
            })
            .await?;
        Ok(Version {
            version: v.version,
            revision: v.revision,
        })
    }

    /// The daemon's plugins matching `filters` (containerd's filter syntax, such as
    /// `type==io.containerd.snapshotter.v1`).
    pub async fn plugins(&self, filters: &[&str]) -> Result<Vec<Plugin>, Error> {
        let request = PluginsRequest {
            filters: filters.iter().map(|f| f.to_string()).collect(),
        };
        let plugins = self
            .unary("introspection.Plugins", "of the daemon", async {
                self.introspection().plugins(request).await
            })
            .await?;
        Ok(plugins
            .plugins
            .into_iter()
            .map(|p| Plugin {
                kind: p.r#type,
                id: p.id,
                error: p.init_err.map(|e| e.message).filter(|m| !m.is_empty()),
            })
            .collect())
    }
}
