//! Mount options split into mount(2) flags, a loop device and the filesystem's own data.

use nix::mount::MsFlags;

use crate::idmap::IdMap;
use crate::loop_device::LoopParams;

/// Mount options that are flags rather than filesystem data: name, whether it clears the
/// flag, the flag.
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
pub(crate) struct Parsed {
    pub(crate) flags: MsFlags,
    /// The filesystem's own options.
    pub(crate) data: Vec<String>,
    /// `loop`: mount a loop device bound to the source file.
    pub(crate) loop_device: Option<LoopParams>,
    /// `uidmap=` and `gidmap=`: idmap the lower layers (overlay) or the bind.
    pub(crate) idmap: Option<IdMap>,
}

/// Splits mount options into flags, a loop device, an id map and the data. Options meant
/// for containerd's own mount manager (`X-containerd.*`) are refused with the reason, as
/// containerd's Go shim does, instead of reaching the kernel as filesystem data; so are a
/// malformed id map and a `uidmap=` without `gidmap=` (or the other way round).
pub(crate) fn parse(options: &[String]) -> Result<Parsed, String> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut loop_device = false;
    let mut direct_io = false;
    let (mut uidmap, mut gidmap) = (None, None);
    for option in options {
        if option.starts_with("X-containerd.") {
            return Err(format!(
                "internal mount option {option:?} was not consumed by containerd's mount manager"
            ));
        }
        if let Some(map) = option.strip_prefix("uidmap=") {
            uidmap = Some(map);
            continue;
        }
        if let Some(map) = option.strip_prefix("gidmap=") {
            gidmap = Some(map);
            continue;
        }
        match FLAGS.iter().find(|(name, _, _)| name == option) {
            Some((_, true, f)) => flags.remove(*f),
            Some((_, false, f)) => flags.insert(*f),
            None if option == "loop" => loop_device = true,
            None if option == "direct-io" => direct_io = true,
            None => data.push(option.clone()),
        }
    }
    if direct_io && !loop_device {
        data.push("direct-io".into());
    }
    let idmap = match (uidmap, gidmap) {
        (None, None) => None,
        (Some(uids), Some(gids)) => Some(IdMap::parse(uids, gids)?),
        _ => return Err("an idmapped mount needs both uidmap= and gidmap=".into()),
    };
    Ok(Parsed {
        idmap,
        loop_device: loop_device.then_some(LoopParams {
            read_only: flags.contains(MsFlags::MS_RDONLY),
            direct_io,
        }),
        flags,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;
    use nix::mount::MsFlags;

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
        assert_eq!(parsed.data.join(","), "lowerdir=/a,upperdir=/b");
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
            parsed.data,
            ["noload"],
            "loop and direct-io are not filesystem data"
        );
        let parsed = parse(&options(&["direct-io"])).expect("parse");
        assert_eq!(
            parsed.data,
            ["direct-io"],
            "without loop, it is the filesystem's"
        );
    }

    #[test]
    fn id_maps_are_parsed_not_passed_on() {
        let parsed = parse(&options(&[
            "uidmap=0:1000:10",
            "gidmap=0:2000:10",
            "lowerdir=/a",
        ]))
        .expect("parse");
        assert_eq!(parsed.data, ["lowerdir=/a"]);
        assert_eq!(parsed.idmap.expect("a map").root(), Ok((1000, 2000)));
        for bad in [
            &["uidmap=0:1000:10"][..],
            &["uidmap=0:1000", "gidmap=0:1000:1"][..],
        ] {
            assert!(parse(&options(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mount_manager_options_are_refused() {
        let option = "X-containerd.mkdir.path=/x";
        let error = parse(&options(&["rw", option])).expect_err(option);
        assert!(error.contains(option), "{error}");
    }
}
