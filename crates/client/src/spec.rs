//! The OCI runtime spec of a container, built with `oci-spec` from the image config and the
//! caller's options.

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceType,
    MountBuilder, Process, Spec,
};

use crate::Error;
use crate::container::NewContainer;
use crate::image::oci::RunConfig;

/// The type URL containerd stores runtime specs under.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// The type URL of a process spec (for exec).
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// The search path a container gets when its image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Builds the runtime spec for `options` in `namespace`, from the image's run config.
pub(crate) fn build(
    namespace: &str,
    options: &NewContainer,
    image: &RunConfig,
) -> Result<Spec, Error> {
    let id = &options.id;
    let bad = |reason: String| Error::Spec {
        id: id.clone(),
        reason,
    };
    let mut spec = Spec::default();
    spec.set_hostname(Some(id.clone()));

    // Process: the image's entrypoint and command unless the caller gave arguments.
    let args = match &options.args {
        Some(args) => args.clone(),
        None => {
            let mut args = image.entrypoint.clone().unwrap_or_default();
            args.extend(image.cmd.clone().unwrap_or_default());
            args
        }
    };
    if args.is_empty() {
        return Err(bad(
            "no command: the image sets none and none was given".into()
        ));
    }
    let mut env = image.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_owned());
    }
    for pair in &options.env {
        let key = pair.split_once('=').map_or(pair.as_str(), |(k, _)| k);
        env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
        env.push(pair.clone());
    }
    let cwd = options
        .cwd
        .clone()
        .or_else(|| image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".to_owned());
    let user = options
        .user
        .clone()
        .or_else(|| image.user.clone().filter(|u| !u.is_empty()));
    let mut process = Process::default();
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(cwd));
    process.set_terminal(Some(options.tty));
    if let Some(user) = user {
        let (uid, gid) = parse_user(&user).ok_or_else(|| {
            bad(format!(
                "user {user:?}: give a numeric uid or uid:gid (names are not looked up)"
            ))
        })?;
        process.user_mut().set_uid(uid);
        process.user_mut().set_gid(gid);
    }
    spec.set_process(Some(process));

    if let Some(root) = spec.root_mut() {
        root.set_path(PathBuf::from("rootfs"));
        root.set_readonly(Some(options.readonly_rootfs));
    }

    // Mounts the caller asked for, after the defaults.
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &options.mounts {
        let mount = MountBuilder::default()
            .destination(PathBuf::from(&m.destination))
            .typ(m.kind.clone())
            .source(PathBuf::from(&m.source))
            .options(m.options.clone())
            .build()
            .map_err(|e| bad(format!("mount {}: {e}", m.destination)))?;
        mounts.push(mount);
    }
    if options.host_network {
        for file in ["/etc/resolv.conf", "/etc/hosts"] {
            if std::path::Path::new(file).exists() {
                let mount = MountBuilder::default()
                    .destination(PathBuf::from(file))
                    .typ("bind")
                    .source(PathBuf::from(file))
                    .options(vec!["rbind".to_owned(), "ro".to_owned()])
                    .build()
                    .map_err(|e| bad(format!("mount {file}: {e}")))?;
                mounts.push(mount);
            }
        }
    }
    spec.set_mounts(Some(mounts));

    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or_else(|| bad("the default spec has no linux section".into()))?;
    linux.set_cgroups_path(Some(PathBuf::from(format!("/{namespace}/{id}"))));
    if options.host_network {
        let namespaces = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| {
                n.typ() != LinuxNamespaceType::Network && n.typ() != LinuxNamespaceType::Uts
            })
            .collect();
        linux.set_namespaces(Some(namespaces));
        spec.set_hostname(None);
    }
    let linux = spec
        .linux_mut()
        .as_mut()
        .ok_or_else(|| bad("the default spec has no linux section".into()))?;
    let mut resources = linux.resources().clone().unwrap_or_default();
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(|e| bad(e.to_string()))?;
    resources.set_devices(Some(vec![deny_all]));
    if let Some(limit) = options.memory_limit {
        let limit =
            i64::try_from(limit).map_err(|_| bad(format!("memory limit {limit} too large")))?;
        let memory = LinuxMemoryBuilder::default()
            .limit(limit)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        resources.set_memory(Some(memory));
    }
    if let Some(cpus) = options.cpus {
        if !cpus.is_finite() || cpus <= 0.0 {
            return Err(bad(format!("cpus {cpus}: give a positive number")));
        }
        let period: u64 = 100_000;
        let cpu = LinuxCpuBuilder::default()
            .period(period)
            .quota((cpus * period as f64) as i64)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        resources.set_cpu(Some(cpu));
    }
    linux.set_resources(Some(resources));
    Ok(spec)
}

fn parse_user(user: &str) -> Option<(u32, u32)> {
    match user.split_once(':') {
        Some((uid, gid)) => Some((uid.parse().ok()?, gid.parse().ok()?)),
        None => {
            let uid = user.parse().ok()?;
            Some((uid, uid))
        }
    }
}
