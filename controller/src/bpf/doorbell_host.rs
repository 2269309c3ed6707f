//! The doorbell program as host infrastructure: loaded and attached once,
//! it serves every VM registered in its outer maps (`VM_STATE`,
//! `VM_STATS`, keyed by the VMM's host tgid). Registering a VM creates its
//! two inner maps, sized to one VM and nothing per CPU, and adds no
//! program. `xevtchn serve` owns one for the host; a privileged `xevtchn
//! run` with no service owns one for its own VM (the same program, maps
//! and code: "embedded").

use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use aya::{
    Ebpf,
    maps::{Array, HashOfMaps, IterableMap, MapData},
};
use xevtchn_common::doorbell::{VmState, VmStats};

use super::{BpfError, load};

pub(crate) const PROGRAM: &str = "kvm_mmio_doorbell";
pub(crate) const VM_STATE: &str = "VM_STATE";
pub(crate) const VM_STATS: &str = "VM_STATS";
pub(crate) const ACTIVE: &str = "DOORBELL_ACTIVE";

/// One registered VM's maps, as file descriptors its VMM can hold: its
/// state (read-write: shared_info and port entries), its counters and the
/// host's per-CPU activity counts (both read-only).
#[derive(Debug)]
pub struct VmMaps {
    pub state: OwnedFd,
    pub stats: OwnedFd,
    pub active: OwnedFd,
}

pub struct DoorbellHost {
    states: HashOfMaps<MapData, u32, Array<MapData, VmState>>,
    stats: HashOfMaps<MapData, u32, Array<MapData, VmStats>>,
    active: MapData,
    cpus: u32,
    // Keeps the program attached for as long as the host exists.
    ebpf: Ebpf,
}

impl DoorbellHost {
    /// Loads the doorbell object and attaches its program to `kvm:kvm_mmio`.
    pub fn start(tasks: &tokio::runtime::Handle) -> Result<Self, BpfError> {
        let cpus = aya::util::nr_cpus().map_err(|(path, e)| BpfError::WhoAmI(format!("reading {path}: {e}")))?.get();
        let mut ebpf = load::load_sized(load::Object::Doorbell, &[(ACTIVE, cpus)])?;
        super::forward_logs(&mut ebpf, tasks);
        let take = |ebpf: &mut Ebpf, name: &'static str| ebpf.take_map(name).ok_or(BpfError::NoMap(name));
        let states = HashOfMaps::try_from(take(&mut ebpf, VM_STATE)?).map_err(BpfError::map(VM_STATE))?;
        let stats = HashOfMaps::try_from(take(&mut ebpf, VM_STATS)?).map_err(BpfError::map(VM_STATS))?;
        let active = match take(&mut ebpf, ACTIVE)? {
            aya::maps::Map::Array(data) => data,
            _ => return Err(BpfError::NoMap(ACTIVE)),
        };
        load::attach_raw_tracepoint(&mut ebpf, PROGRAM, "kvm_mmio")?;
        Ok(Self { states, stats, active, cpus, ebpf })
    }

    /// The host's possible CPUs (the activity map's entries).
    pub fn cpus(&self) -> u32 {
        self.cpus
    }

    /// This process's host tgid (see `whoami`), asked of the kernel.
    pub fn whoami(&mut self) -> Result<u32, BpfError> {
        super::whoami::host_tgid(&mut self.ebpf)
    }

    /// Serves the VM of process `host_tgid` from now on: its two maps are
    /// created, zeroed, and returned with the activity map. A process is
    /// registered once.
    pub fn register(&mut self, host_tgid: u32) -> Result<VmMaps, BpfError> {
        let state: Array<MapData, VmState> =
            Array::create(1, uapi::BPF_F_MMAPABLE).map_err(BpfError::map("a VM's state"))?;
        let stats: Array<MapData, VmStats> =
            Array::create(1, uapi::BPF_F_MMAPABLE).map_err(BpfError::map("a VM's counters"))?;
        self.stats.insert(&host_tgid, &stats, uapi::BPF_NOEXIST).map_err(BpfError::map(VM_STATS))?;
        if let Err(e) = self.states.insert(&host_tgid, &state, uapi::BPF_NOEXIST) {
            let _ = self.stats.remove(&host_tgid);
            return Err(BpfError::map(VM_STATE)(e));
        }
        Ok(VmMaps { state: dup(state.map())?, stats: read_only(stats.map())?, active: read_only(&self.active)? })
    }

    /// Stops serving `host_tgid`'s VM (its maps go when its VMM lets go).
    pub fn unregister(&mut self, host_tgid: u32) {
        let _ = self.states.remove(&host_tgid);
        let _ = self.stats.remove(&host_tgid);
    }

    /// The registered VMs' host tgids.
    pub fn registered(&self) -> Vec<u32> {
        self.states.keys().filter_map(Result::ok).collect()
    }
}

fn dup(map: &MapData) -> Result<OwnedFd, BpfError> {
    map.fd().as_fd().try_clone_to_owned().map_err(|source| BpfError::Mmap { map: "a VM's state", source })
}

/// A read-only file descriptor of `map` (BPF_MAP_GET_FD_BY_ID with
/// BPF_F_RDONLY: aya opens maps read-write only): its holder can map it
/// for reading and change nothing.
fn read_only(map: &MapData) -> Result<OwnedFd, BpfError> {
    let id = map.info().map_err(BpfError::map("map info"))?.id();
    // union bpf_attr for BPF_MAP_GET_FD_BY_ID: map_id, next_id, open_flags.
    let mut attr = [0u32; 3];
    attr[0] = id;
    attr[2] = uapi::BPF_F_RDONLY;
    // SAFETY: bpf(2) reads `size` bytes of `attr`, a valid bpf_attr prefix
    // for this command; it returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, uapi::BPF_MAP_GET_FD_BY_ID, attr.as_mut_ptr(), size_of_val(&attr) as u32)
    };
    if fd < 0 {
        return Err(BpfError::Mmap { map: "a read-only map fd", source: std::io::Error::last_os_error() });
    }
    // SAFETY: bpf(2) just returned this fd, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// From include/uapi/linux/bpf.h (libc has none of them).
mod uapi {
    pub const BPF_MAP_GET_FD_BY_ID: i64 = 14;
    pub const BPF_NOEXIST: u64 = 1;
    pub const BPF_F_RDONLY: u32 = 1 << 3;
    pub const BPF_F_MMAPABLE: u32 = 1 << 10;
}
