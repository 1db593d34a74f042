//! The container's root filesystem mounts from `Create`, and their removal on `Delete`.

use std::path::{Path, PathBuf};

use ctrd_api::containerd::types::Mount;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Mount options that are flags rather than filesystem data.
const FLAGS: &[(&str, bool, MsFlags)] = &[
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("atime", true, MsFlags::MS_NOATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("defaults", false, MsFlags::empty()),
    ("dev", true, MsFlags::MS_NODEV),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("nodev", false, MsFlags::MS_NODEV),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("remount", false, MsFlags::MS_REMOUNT),
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("suid", true, MsFlags::MS_NOSUID),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
];

/// Splits mount options into flags and the data string.
fn parse(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options {
        match FLAGS.iter().find(|(name, _, _)| name == option) {
            Some((_, true, f)) => flags.remove(*f),
            Some((_, false, f)) => flags.insert(*f),
            None => data.push(option.as_str()),
        }
    }
    (flags, data.join(","))
}

/// Mounts `mounts` in order onto `rootfs` (each at its `target` below it).
pub fn mount_all(mounts: &[Mount], rootfs: &Path) -> Result<(), String> {
    for (i, m) in mounts.iter().enumerate() {
        let target = rootfs.join(m.target.trim_start_matches('/'));
        let (flags, data) = parse(&m.options);
        let fstype = (!m.r#type.is_empty() && m.r#type != "bind").then_some(m.r#type.as_str());
        let data = (!data.is_empty()).then_some(data.as_str());
        let bind_ro = flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY);
        let result = if fstype == Some("overlay") && data.is_some_and(|d| d.len() >= PAGE) {
            mount_long_overlay(m.source.as_str(), &target, flags, &m.options)
        } else {
            mount(Some(m.source.as_str()), &target, fstype, flags, data)
        };
        let result = result.and_then(|()| {
            if bind_ro {
                // A bind mount ignores MS_RDONLY until remounted.
                mount(
                    None::<&str>,
                    &target,
                    None::<&str>,
                    flags | MsFlags::MS_REMOUNT,
                    None::<&str>,
                )
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            // Leave nothing half-mounted.
            unmount_all(rootfs);
            return Err(format!(
                "mounting {} ({}) on {}: {e} (mount {} of {})",
                m.source,
                m.r#type,
                target.display(),
                i + 1,
                mounts.len()
            ));
        }
    }
    Ok(())
}

/// mount(2) copies at most one page of filesystem data.
const PAGE: usize = 4096;

/// Mounts an overlay whose options exceed a page (long lowerdir chains, such as 128 image
/// layers): the paths are made relative to the deepest folder they share, and the mount is
/// made from a thread whose working directory is that folder. The thread unshares its
/// filesystem context first, so the shim's other threads keep their working directory.
fn mount_long_overlay(
    source: &str,
    target: &Path,
    flags: MsFlags,
    options: &[String],
) -> nix::Result<()> {
    let (dir, relative) = relative_overlay_options(options);
    let (_, data) = parse(&relative);
    let target = std::path::absolute(target).map_err(|_| nix::Error::EINVAL)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: unshare(2) with CLONE_FS only detaches this thread's cwd, root and
                // umask from the rest of the process; it takes no pointers.
                let rc = unsafe { nix::libc::unshare(nix::libc::CLONE_FS) };
                if rc != 0 {
                    return Err(nix::Error::last());
                }
                nix::unistd::chdir(&dir)?;
                mount(
                    Some(source),
                    &target,
                    Some("overlay"),
                    flags,
                    Some(data.as_str()),
                )
            })
            .join()
            .unwrap_or(Err(nix::Error::EIO))
    })
}

/// The deepest folder holding every `lowerdir`, `upperdir` and `workdir` path, and the
/// options with those paths made relative to it.
fn relative_overlay_options(options: &[String]) -> (PathBuf, Vec<String>) {
    let mut paths: Vec<&Path> = Vec::new();
    for option in options {
        match option.split_once('=') {
            Some(("lowerdir", value)) => paths.extend(value.split(':').map(Path::new)),
            Some(("upperdir" | "workdir", value)) => paths.push(Path::new(value)),
            _ => {}
        }
    }
    let mut common: Option<PathBuf> = None;
    for path in &paths {
        let parent = path.parent().unwrap_or(Path::new("/"));
        common = Some(match common {
            None => parent.to_path_buf(),
            Some(c) => c
                .components()
                .zip(parent.components())
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let common = common.unwrap_or_else(|| PathBuf::from("/"));
    let strip = |p: &str| {
        Path::new(p)
            .strip_prefix(&common)
            .map_or_else(|_| p.to_owned(), |r| r.to_string_lossy().into_owned())
    };
    let relative = options
        .iter()
        .map(|option| match option.split_once('=') {
            Some(("lowerdir", value)) => {
                let dirs: Vec<String> = value.split(':').map(strip).collect();
                format!("lowerdir={}", dirs.join(":"))
            }
            Some((key @ ("upperdir" | "workdir"), value)) => format!("{key}={}", strip(value)),
            _ => option.clone(),
        })
        .collect();
    (common, relative)
}

/// Unmounts everything stacked on `rootfs`.
pub fn unmount_all(rootfs: &Path) {
    // Each call removes the top mount; stop when nothing is left (EINVAL) or after a bound.
    for _ in 0..64 {
        if umount2(rootfs, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, relative_overlay_options};
    use nix::mount::MsFlags;
    use std::path::Path;

    #[test]
    fn long_overlay_options_become_relative_to_their_shared_folder() {
        let lower: Vec<String> = (0..128)
            .map(|i| format!("/var/lib/containerd/snapshots/{i}/fs"))
            .collect();
        let (dir, options) = relative_overlay_options(&[
            "index=off".into(),
            "workdir=/var/lib/containerd/snapshots/200/work".into(),
            "upperdir=/var/lib/containerd/snapshots/200/fs".into(),
            format!("lowerdir={}", lower.join(":")),
        ]);
        assert_eq!(dir, Path::new("/var/lib/containerd/snapshots"));
        assert_eq!(options[0], "index=off");
        assert_eq!(options[1], "workdir=200/work");
        assert_eq!(options[2], "upperdir=200/fs");
        assert!(options[3].starts_with("lowerdir=0/fs:1/fs:2/fs"));
        assert!(options.join(",").len() < 4096, "fits in a page now");
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let (flags, data) = parse(&[
            "ro".into(),
            "rbind".into(),
            "lowerdir=/a".into(),
            "upperdir=/b".into(),
        ]);
        assert_eq!(
            flags,
            MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC
        );
        assert_eq!(data, "lowerdir=/a,upperdir=/b");
        let (flags, _) = parse(&["ro".into(), "rw".into()]);
        assert!(flags.is_empty(), "later options win");
    }
}
