//! Leases as guards: what is made inside a lease stays until the lease goes, so an operation
//! that fails half way leaves nothing behind once its lease is dropped.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use ctrd_api::containerd::services::leases::v1 as leases;

use crate::{Client, Error};

/// The label that makes containerd's garbage collector remove a lease at a given time.
pub const EXPIRE_LABEL: &str = "containerd.io/gc.expire";

/// A lease, deleted when dropped unless [`keep`](Lease::keep) was called.
///
/// Dropping deletes the lease in the background on the current tokio runtime; call
/// [`release`](Lease::release) to wait for the deletion (and the garbage collection it
/// triggers). A lease that could not be deleted (the process died) still expires at the time
/// it was created with.
#[derive(Debug)]
pub struct Lease {
    client: Client,
    id: String,
    done: bool,
}

impl Client {
    /// Creates a lease that expires after `expire` even if never deleted.
    pub async fn lease(&self, expire: Duration) -> Result<Lease, Error> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let id = format!("ctrd-{nanos}-{}", std::process::id());
        let expire_at = humantime::format_rfc3339_seconds(SystemTime::now() + expire).to_string();
        let request = leases::CreateRequest {
            id: id.clone(),
            labels: HashMap::from([(EXPIRE_LABEL.to_owned(), expire_at)]),
        };
        let client = self.in_lease(None);
        client
            .unary("leases.Create", format!("lease {id}"), async {
                client.leases().create(request).await
            })
            .await?;
        Ok(Lease {
            client,
            id,
            done: false,
        })
    }

    /// The ids of the leases in this namespace.
    pub async fn list_leases(&self) -> Result<Vec<String>, Error> {
        let listed = self
            .unary(
                "leases.List",
                format!("namespace {}", self.namespace()),
                async {
                    self.leases()
                        .list(leases::ListRequest { filters: vec![] })
                        .await
                },
            )
            .await?;
        Ok(listed.leases.into_iter().map(|l| l.id).collect())
    }
}

impl Lease {
    /// The lease's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A client whose calls are made inside this lease.
    pub fn client(&self) -> Client {
        self.client.in_lease(Some(self.id.clone()))
    }

    /// Keeps the lease (until it expires, or someone deletes it); returns its id.
    pub fn keep(mut self) -> String {
        self.done = true;
        std::mem::take(&mut self.id)
    }

    /// Deletes the lease and waits for containerd to collect what only it held.
    pub async fn release(mut self) -> Result<(), Error> {
        self.done = true;
        delete(&self.client, &self.id).await
    }
}

async fn delete(client: &Client, id: &str) -> Result<(), Error> {
    let request = leases::DeleteRequest {
        id: id.to_owned(),
        sync: true,
    };
    match client
        .unary("leases.Delete", format!("lease {id}"), async {
            client.leases().delete(request).await
        })
        .await
    {
        Err(e) if e.is_not_found() => Ok(()),
        other => other.map(|_| ()),
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            let id = std::mem::take(&mut self.id);
            runtime.spawn(async move {
                if let Err(e) = delete(&client, &id).await {
                    tracing::warn!("dropping lease {id}: {e}");
                }
            });
        }
    }
}
