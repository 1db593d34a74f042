//! [`Mount`] and performing a list of them: [`mount_all`], [`unmount_all`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::idmap::{IdMap, UserNamespace, attach, idmapped_tree};
use crate::long_overlay::{PAGE, mount_long_overlay};
use crate::loop_device::LoopDevice;
use crate::options::{Parsed, parse};
use crate::{Error, Result};

/// One mount, in the form containerd passes to shims and mount(8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    /// Filesystem type (`overlay`, `bind`, `ext4`, ...).
    pub kind: String,
    /// What to mount.
    pub source: String,
    /// Where, relative to the folder the list is mounted on (usually empty).
    pub target: String,
    /// Mount options: flags (`ro`, `rbind`, `nosuid`, ...), `loop`, and filesystem data.
    pub options: Vec<String>,
}

/// Mounts `mounts` in order onto `root` (each at its own `target` below it). On failure
/// nothing stays mounted on `root`, and a loop device made for the failed mount is freed.
pub fn mount_all(mounts: &[Mount], root: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        let target = root.join(m.target.trim_start_matches('/'));
        if let Err(reason) = mount_one(m, &target) {
            unmount_all(root);
            return Err(Error::Mount {
                from: m.source.clone(),
                kind: m.kind.clone(),
                target,
                reason,
                index: i + 1,
                count: mounts.len(),
            });
        }
    }
    Ok(())
}

/// Unmounts everything stacked on `root` (detached, so busy mounts go once unused).
pub fn unmount_all(root: &Path) {
    // Each call removes the top mount; stop when nothing is left (EINVAL) or after a bound.
    for _ in 0..64 {
        if umount2(root, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

fn mount_one(m: &Mount, target: &Path) -> Result<(), String> {
    let Parsed {
        flags,
        data,
        loop_device,
        idmap,
    } = parse(&m.options)?;
    if let Some(map) = idmap {
        return mount_idmapped(m, target, flags, data, &map);
    }
    let fstype = (!m.kind.is_empty() && m.kind != "bind").then_some(m.kind.as_str());
    let joined = data.join(",");
    let bind_ro = flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY);
    // With autoclear set, the device goes once nothing uses it: dropping the handle after
    // the mount leaves it to the kernel.
    let device = loop_device
        .map(|params| LoopDevice::attach(Path::new(&m.source), params))
        .transpose()?;
    let source = match &device {
        Some(d) => d
            .path()
            .to_str()
            .ok_or_else(|| format!("loop device {} has no UTF-8 path", d.path().display()))?,
        None => m.source.as_str(),
    };
    let result = if fstype == Some("overlay") && joined.len() >= PAGE {
        mount_long_overlay(source, target, flags, &data)
    } else {
        let data = (!joined.is_empty()).then_some(joined.as_str());
        mount(Some(source), target, fstype, flags, data).map_err(|e| e.to_string())
    };
    if result.is_err()
        && let Some(device) = &device
    {
        device.detach();
    }
    result?;
    if bind_ro {
        // A bind mount ignores MS_RDONLY until remounted.
        if let Err(e) = mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        ) {
            unmount_all(target);
            return Err(format!("making the bind mount read-only: {e}"));
        }
    }
    Ok(())
}

/// Folders idmapped lower layers are attached to while an overlay is mounted on them.
static IDMAPPED: AtomicU64 = AtomicU64::new(0);

/// A mount with `uidmap=` and `gidmap=`: an overlay on idmapped copies of its lower layers
/// (its upper layer stays as it is, as containerd does), or an idmapped bind.
fn mount_idmapped(
    m: &Mount,
    target: &Path,
    flags: MsFlags,
    data: Vec<String>,
    map: &IdMap,
) -> Result<(), String> {
    let userns = UserNamespace::new(map)?;
    match m.kind.as_str() {
        "overlay" => {
            let n = IDMAPPED.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("ctrd-idmap-{}-{n}", std::process::id()));
            std::fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let result = mount_overlay_on_idmapped_lowers(m, target, flags, data, &userns, &dir);
            // The overlay holds its lower layers by itself: their mount points can go.
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    unmount_all(&entry.path());
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
            result
        }
        "bind" | "" if flags.contains(MsFlags::MS_BIND) => {
            let tree = idmapped_tree(
                Path::new(&m.source),
                &userns,
                flags.contains(MsFlags::MS_REC),
            )?;
            attach(&tree, target)?;
            if flags.contains(MsFlags::MS_RDONLY) {
                let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                if let Err(e) = mount(None::<&str>, target, None::<&str>, remount, None::<&str>) {
                    unmount_all(target);
                    return Err(format!("making the idmapped bind read-only: {e}"));
                }
            }
            Ok(())
        }
        other => Err(format!(
            "idmapped mounts of type {other:?} are not supported"
        )),
    }
}

fn mount_overlay_on_idmapped_lowers(
    m: &Mount,
    target: &Path,
    flags: MsFlags,
    mut data: Vec<String>,
    userns: &UserNamespace,
    dir: &Path,
) -> Result<(), String> {
    let Some(lower) = data.iter_mut().find(|o| o.starts_with("lowerdir=")) else {
        return Err("an idmapped overlay needs lowerdir=".into());
    };
    let mut mapped: Vec<PathBuf> = Vec::new();
    for (i, layer) in lower["lowerdir=".len()..].split(':').enumerate() {
        let at = dir.join(i.to_string());
        std::fs::create_dir(&at).map_err(|e| format!("creating {}: {e}", at.display()))?;
        let tree = idmapped_tree(Path::new(layer), userns, false)?;
        attach(&tree, &at)?;
        mapped.push(at);
    }
    let joined: Vec<String> = mapped.iter().map(|p| p.display().to_string()).collect();
    *lower = format!("lowerdir={}", joined.join(":"));
    let all = data.join(",");
    if all.len() >= PAGE {
        mount_long_overlay(&m.source, target, flags, &data)
    } else {
        mount(
            Some(m.source.as_str()),
            target,
            Some("overlay"),
            flags,
            Some(all.as_str()),
        )
        .map_err(|e| e.to_string())
    }
}
