//! KVM's per-vCPU statistics, read through KVM_GET_STATS_FD (the binary
//! stats interface, Documentation/virt/kvm/api.rst 4.133): the exit counts
//! a tracepoint cannot give on this host kind (kvm_exit never fires on PVM).

use std::{
    collections::BTreeMap,
    fs::File,
    io,
    os::{fd::FromRawFd, unix::fs::FileExt},
};

use kvm_bindings::{KVMIO, kvm_stats_header};
use kvm_ioctls::VcpuFd;
use vmm_sys_util::{ioctl::ioctl, ioctl_io_nr};

ioctl_io_nr!(KVM_GET_STATS_FD, KVMIO, 0xce);

/// The counters worth reporting, summed over vCPUs.
pub const REPORTED: &[&str] = &["exits", "mmio_exits", "insn_emulation", "irq_injections", "halt_exits"];

/// An open stats file of one vCPU.
pub struct VcpuStats {
    file: File,
}

impl VcpuStats {
    pub fn open(vcpu: &VcpuFd) -> io::Result<Self> {
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new fd,
        // which we own from here on.
        let fd = unsafe { ioctl(vcpu, KVM_GET_STATS_FD()) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(Self { file: unsafe { File::from_raw_fd(fd) } })
    }

    /// Every single-valued counter, by name.
    pub fn read(&self) -> io::Result<BTreeMap<String, u64>> {
        let mut raw = [0u8; size_of::<kvm_stats_header>()];
        self.file.read_exact_at(&mut raw, 0)?;
        let word = |i: usize| u32::from_ne_bytes(raw[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
        let (name_size, num_desc, desc_offset, data_offset) = (word(1), word(2), word(4), word(5));
        let desc_size = 16 + name_size as usize;
        let mut descs = vec![0u8; desc_size * num_desc as usize];
        self.file.read_exact_at(&mut descs, u64::from(desc_offset))?;
        let mut stats = BTreeMap::new();
        for desc in descs.chunks_exact(desc_size) {
            let size = u16::from_ne_bytes([desc[6], desc[7]]);
            let offset = u32::from_ne_bytes(desc[8..12].try_into().expect("4 bytes"));
            if size != 1 {
                continue; // histograms
            }
            let name = &desc[16..];
            let name = String::from_utf8_lossy(&name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())]);
            let mut value = [0u8; 8];
            self.file.read_exact_at(&mut value, u64::from(data_offset) + u64::from(offset))?;
            stats.insert(name.into_owned(), u64::from_ne_bytes(value));
        }
        Ok(stats)
    }
}
