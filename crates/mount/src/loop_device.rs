//! Loop devices for rootfs mounts with the `loop` option (a filesystem image file, as block
//! snapshotters return): a free device from `/dev/loop-control`, bound to the file with
//! autoclear, so the kernel releases it when the mount that uses it goes away.
//!
//! The ioctls are declared here: the `libc` crate does not carry the loop device's, and the
//! loop device crates on crates.io generate their bindings with bindgen at build time (which
//! needs libclang on every machine that builds this crate).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

// From linux/loop.h.
const LOOP_SET_FD: u64 = 0x4C00;
const LOOP_CLR_FD: u64 = 0x4C01;
const LOOP_SET_STATUS64: u64 = 0x4C04;
const LOOP_CTL_GET_FREE: u64 = 0x4C82;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;
const LO_NAME_SIZE: usize = 64;

/// `struct loop_info64` of linux/loop.h.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

nix::ioctl_none_bad!(loop_ctl_get_free, LOOP_CTL_GET_FREE);
nix::ioctl_write_int_bad!(loop_set_fd, LOOP_SET_FD);
nix::ioctl_none_bad!(loop_clr_fd, LOOP_CLR_FD);
nix::ioctl_write_ptr_bad!(loop_set_status64, LOOP_SET_STATUS64, LoopInfo64);

/// How to bind a file to a loop device.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopParams {
    /// The device is read-only (and the file opened read-only).
    pub read_only: bool,
    /// Direct I/O on the backing file (the `direct-io` mount option).
    pub direct_io: bool,
}

/// A loop device bound to a file, with autoclear set: once a mount uses it, dropping this
/// handle leaves the device to the kernel, which frees it at unmount. [`LoopDevice::detach`]
/// frees it at once when the mount failed.
#[derive(Debug)]
pub struct LoopDevice {
    device: File,
    path: PathBuf,
}

impl LoopDevice {
    /// Binds `file` to a free loop device.
    pub fn attach(file: &Path, params: LoopParams) -> Result<LoopDevice, String> {
        let backing = OpenOptions::new()
            .read(true)
            .write(!params.read_only)
            .open(file)
            .map_err(|e| format!("opening loop backing file {}: {e}", file.display()))?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(|e| format!("opening /dev/loop-control: {e}"))?;
        // Another process may take the free device between asking and binding: ask again.
        for _ in 0..16 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument; the fd is open for its duration.
            let number = unsafe { loop_ctl_get_free(control.as_raw_fd()) }
                .map_err(|e| format!("finding a free loop device: {e}"))?;
            let path = PathBuf::from(format!("/dev/loop{number}"));
            let device = OpenOptions::new()
                .read(true)
                .write(!params.read_only)
                .open(&path)
                .map_err(|e| format!("opening {}: {e}", path.display()))?;
            // SAFETY: LOOP_SET_FD takes the backing file's descriptor by value; both fds stay
            // open for the call.
            match unsafe { loop_set_fd(device.as_raw_fd(), backing.as_raw_fd()) } {
                Ok(_) => {}
                Err(nix::errno::Errno::EBUSY) => continue,
                Err(e) => {
                    return Err(format!(
                        "binding {} to {}: {e}",
                        file.display(),
                        path.display()
                    ));
                }
            }
            let loop_device = LoopDevice { device, path };
            loop_device.set_status(file, params)?;
            return Ok(loop_device);
        }
        Err(format!(
            "binding {} to a loop device: every free device was taken first",
            file.display()
        ))
    }

    fn set_status(&self, file: &Path, params: LoopParams) -> Result<(), String> {
        let mut flags = LO_FLAGS_AUTOCLEAR;
        if params.read_only {
            flags |= LO_FLAGS_READ_ONLY;
        }
        if params.direct_io {
            flags |= LO_FLAGS_DIRECT_IO;
        }
        let mut info = LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags: flags,
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; 32],
            lo_init: [0; 2],
        };
        let name = file.as_os_str().as_encoded_bytes();
        let n = name.len().min(LO_NAME_SIZE - 1);
        info.lo_file_name[..n].copy_from_slice(&name[..n]);
        // SAFETY: LOOP_SET_STATUS64 reads a `struct loop_info64`, which `LoopInfo64` lays out
        // (repr(C)); the pointer is valid for the call.
        match unsafe { loop_set_status64(self.device.as_raw_fd(), &info) } {
            Ok(_) => Ok(()),
            Err(e) => {
                self.detach();
                Err(format!(
                    "setting up {} for {}: {e}",
                    self.path.display(),
                    file.display()
                ))
            }
        }
    }

    /// The device node to mount.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unbinds the file now (when the mount that was to use it failed).
    pub fn detach(&self) {
        // SAFETY: LOOP_CLR_FD takes no argument; the fd is open for its duration.
        let _ = unsafe { loop_clr_fd(self.device.as_raw_fd()) };
    }
}
