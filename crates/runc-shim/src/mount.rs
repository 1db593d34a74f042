//! The container's root filesystem mounts from `Create`, and their removal on `Delete`.

use std::path::Path;

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
        let result = mount(Some(m.source.as_str()), &target, fstype, flags, data).and_then(|()| {
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
    use super::parse;
    use nix::mount::MsFlags;

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
