//! containerd's runc runtime (`io.containerd.runc.v2`) as a Rust shim: build the
//! `containerd-shim-runc-v2` binary and put it before containerd's own on its `PATH`.
//!
//! The shim is a library too: [`RuncShim`] plugs into [`ctrd_shim::run`], and [`Service`] is
//! the task service, for shims that extend runc's behaviour.

pub mod cgroup;
mod console;
mod container;
mod create;
mod deadline;
mod error;
mod exec;
mod exits;
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
mod oom;
mod oom_score;
mod options;
mod process;
mod rootfs;
mod service;
mod shim_cgroup;
mod stdio;
pub mod validate;

pub use service::{STATS_FROM_RUNC, Service};

use ctrd_api::containerd::task::v2::DeleteResponse;
use ctrd_api::containerd::types::{RuntimeInfo, RuntimeVersion};
use ctrd_shim::{DeleteContext, Error, ServeContext, Shim, StartContext};

/// The type URL containerd gives runc's `features` document.
pub const FEATURES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

/// The runc shim.
#[derive(Debug)]
pub struct RuncShim;

impl Shim for RuncShim {
    type Task = Service;
    const NAME: &'static str = "containerd-shim-runc-v2";

    async fn task(ctx: ServeContext) -> Result<Service, Error> {
        Ok(Service::new(ctx))
    }

    /// Takes an OOM score one above containerd's and joins the shim cgroup the runc options
    /// name, so the serving shim starts with both.
    fn on_start(ctx: &StartContext) -> Result<(), Error> {
        oom_score::follow_parent()
            .map_err(|e| Error::Shim(format!("adjusting the shim's OOM score: {e}")))?;
        let opts = options::decode(ctx.options.as_ref());
        if !opts.shim_cgroup.is_empty() {
            shim_cgroup::join(&opts.shim_cgroup)
                .map_err(|e| Error::Shim(format!("shim cgroup: {e}")))?;
        }
        Ok(())
    }

    /// Name, version and, as containerd 2.x shows it, what the default runc supports.
    fn info() -> RuntimeInfo {
        let features = ctrd_runc::Runc::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .features()
            .ok()
            .and_then(|f| serde_json::to_vec(&f).ok())
            .map(|value| ctrd_api::prost_types::Any {
                type_url: FEATURES_TYPE_URL.to_owned(),
                value,
            });
        RuntimeInfo {
            name: Self::NAME.to_owned(),
            version: Some(RuntimeVersion {
                version: Self::VERSION.to_owned(),
                revision: String::new(),
            }),
            features,
            ..Default::default()
        }
    }

    /// For a container whose shim died: force-delete it in runc and unmount its rootfs.
    async fn delete(ctx: DeleteContext) -> Result<DeleteResponse, Error> {
        let opts = options::load(&ctx.bundle);
        // containerd runs this after every shim exit; when the serving shim already deleted
        // the container, runc has no state for it and there is no runc process to spend.
        if options::runc_root(&opts, &ctx.namespace)
            .join(&ctx.id)
            .exists()
        {
            let runc = options::runc(&opts, &ctx.namespace, &ctx.bundle, None);
            if let Err(e) = runc.delete(&ctx.id, true).await
                && !e.is_not_found()
            {
                tracing::warn!(error = %e, id = %ctx.id, "runc delete failed");
            }
        }
        ctrd_mount::unmount_all(&ctx.bundle.join("rootfs"));
        Ok(DeleteResponse {
            pid: 0,
            exit_status: 128 + 9,
            exited_at: Some(ctrd_shim::now()),
        })
    }
}
