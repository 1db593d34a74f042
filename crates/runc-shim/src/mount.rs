//! The container's root filesystem mounts from `Create`, and their removal on `Delete`.

use std::path::{Path, PathBuf};

use ctrd_api::containerd::types::Mount;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::loop_device::{LoopDevice, LoopParams};

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

/// What a mount's options ask for.
#[derive(Debug)]
struct Parsed {
    flags: MsFlags,
    /// The filesystem's own options, comma-separated.
    data: String,
    /// `loop`: mount a loop device bound to the source file.
    loop_device: Option<LoopParams>,
}

/// Splits mount options into flags, a loop device and the data string. Options meant for
/// containerd's own mount manager (`X-containerd.*`) and idmapped mounts (`uidmap=`,
/// `gidmap=`) are refused with the reason, as containerd's Go shim does, instead of reaching
/// the kernel as filesystem data.
fn parse(options: &[String]) -> Result<Parsed, String> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut loop_device = false;
    let mut direct_io = false;
    for option in options {
        if option.starts_with("X-containerd.") {
            return Err(format!(
                "internal mount option {option:?} was not consumed by containerd's mount manager"
            ));
        }
        if option.starts_with("uidmap=") || option.starts_with("gidmap=") {
            return Err(format!(
                "mount option {option:?}: idmapped rootfs mounts are not supported by this shim"
            ));
        }
        match FLAGS.iter().find(|(name, _, _)| name == option) {
            Some((_, true, f)) => flags.remove(*f),
            Some((_, false, f)) => flags.insert(*f),
            None if option == "loop" => loop_device = true,
            None if option == "direct-io" => direct_io = true,
            None => data.push(option.as_str()),
        }
    }
    if direct_io && !loop_device {
        data.push("direct-io");
    }
    Ok(Parsed {
        loop_device: loop_device.then_some(LoopParams {
            read_only: flags.contains(MsFlags::MS_RDONLY),
            direct_io,
        }),
        flags,
        data: data.join(","),
    })
}

/// Mounts `mounts` in order onto `rootfs` (each at its `target` below it).
pub fn mount_all(mounts: &[Mount], rootfs: &Path) -> Result<(), String> {
    for (i, m) in mounts.iter().enumerate() {
        let target = rootfs.join(m.target.trim_start_matches('/'));
        let failed = |reason: String| {
            unmount_all(rootfs);
            format!(
                "mounting {} ({}) on {}: {reason} (mount {} of {})",
                m.source,
                m.r#type,
                target.display(),
                i + 1,
                mounts.len()
            )
        };
        let Parsed {
            flags,
            data,
            loop_device,
        } = parse(&m.options).map_err(failed)?;
        let fstype = (!m.r#type.is_empty() && m.r#type != "bind").then_some(m.r#type.as_str());
        let data = (!data.is_empty()).then_some(data.as_str());
        let bind_ro = flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY);
        // With autoclear set, the device goes once nothing uses it: dropping the handle after
        // the mount leaves it to the kernel.
        let device = loop_device
            .map(|params| LoopDevice::attach(Path::new(&m.source), params))
            .transpose()
            .map_err(failed)?;
        let source = device
            .as_ref()
            .map_or(m.source.as_str(), |d| d.path().to_str().unwrap_or_default());
        let result = if fstype == Some("overlay") && data.is_some_and(|d| d.len() >= PAGE) {
            mount_long_overlay(source, &target, flags, &m.options)
        } else {
            mount(Some(source), &target, fstype, flags, data)
        };
        if result.is_err()
            && let Some(device) = &device
        {
            device.detach();
        }
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
            return Err(failed(e.to_string()));
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
    // The options already parsed once (as absolute paths); only their data is needed here.
    let data = parse(&relative).map_err(|_| nix::Error::EINVAL)?.data;
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

    fn options(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let parsed =
            parse(&options(&["ro", "rbind", "lowerdir=/a", "upperdir=/b"])).expect("parse");
        assert_eq!(
            parsed.flags,
            MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC
        );
        assert_eq!(parsed.data, "lowerdir=/a,upperdir=/b");
        assert!(parsed.loop_device.is_none());
        let parsed = parse(&options(&["ro", "rw"])).expect("parse");
        assert!(parsed.flags.is_empty(), "later options win");
    }

    #[test]
    fn loop_and_direct_io_ask_for_a_loop_device() {
        let parsed = parse(&options(&["loop", "ro", "direct-io", "noload"])).expect("parse");
        let device = parsed.loop_device.expect("a loop device");
        assert!(device.read_only && device.direct_io);
        assert_eq!(
            parsed.data, "noload",
            "loop and direct-io are not filesystem data"
        );
        let parsed = parse(&options(&["direct-io"])).expect("parse");
        assert_eq!(
            parsed.data, "direct-io",
            "without loop, it is the filesystem's"
        );
    }

    #[test]
    fn mount_manager_and_idmap_options_are_refused() {
        for option in [
            "X-containerd.mkdir.path=/x",
            "uidmap=0:1000:1",
            "gidmap=0:1000:1",
        ] {
            let error = parse(&options(&["rw", option])).expect_err(option);
            assert!(error.contains(option), "{error}");
        }
    }
}
