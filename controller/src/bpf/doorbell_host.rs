//! The doorbell program as host infrastructure: loaded and attached once,
//! it serves every VM registered in its outer maps (`VM_STATE`,
//! `VM_STATS`, keyed by the VMM's host tgid). Registering a VM creates its
//! two inner maps, sized to one VM and nothing per CPU, and adds no
//! program. `xevtchn serve` owns one for the host; a privileged `xevtchn
//! run` with no service owns one for its own VM (the same program, maps
//! and code: "embedded").

use std::{
    os::fd::{AsFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{Array, HashMap, HashOfMaps, IterableMap, MapData},
};
use xevtchn_common::doorbell::{MAX_VMS, VmState, VmStats};

use super::{BpfError, load};

/// The programs and the tracepoints they serve doorbells on: MMIO ones
/// (CPL3 senders of the built-in guest) and port-I/O ones (CPL0 senders).
pub(crate) const PROGRAMS: [(&str, &str); 2] = [("kvm_mmio_doorbell", "kvm_mmio"), ("kvm_pio_doorbell", "kvm_pio")];
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
    /// When each VMM started (its /proc stat field 22), by host tgid: a
    /// restarted service tells a live VMM from a new process with its pid.
    started: Option<HashMap<MapData, u32, u64>>,
    cpus: u32,
    /// Where the program and maps are pinned (the service), if they are.
    pins: Option<PathBuf>,
    // The program, attached by this process (None: adopted from pins).
    ebpf: Option<Ebpf>,
}

/// Pin names under the service's pin directory.
/// The programs' links, in the order of `PROGRAMS`. A service pinned by a
/// version without the port-I/O program is adopted as it is: its VMs'
/// canaries then find the port-I/O doorbells unserved and deliver in
/// userspace (nothing is lost).
const PIN_LINKS: [&str; 2] = ["doorbell_link", "doorbell_pio_link"];
const PIN_LINK: &str = PIN_LINKS[0];
const PIN_STARTED: &str = "VM_STARTED";

impl DoorbellHost {
    /// Loads the doorbell object and attaches its program to `kvm:kvm_mmio`,
    /// for as long as this host lives (a VMM's own, "embedded").
    pub fn start(tasks: &tokio::runtime::Handle) -> Result<Self, BpfError> {
        let (mut ebpf, states, stats, active, cpus) = Self::load(tasks, None)?;
        for (program, tracepoint) in PROGRAMS {
            load::attach_raw_tracepoint(&mut ebpf, program, tracepoint)?;
        }
        Ok(Self { states, stats, active, started: None, cpus, pins: None, ebpf: Some(ebpf) })
    }

    /// The service's host: the program and maps pinned under `dir`, so that
    /// they outlive the service (a crash, an upgrade). If they are pinned
    /// there already, they are taken over as they are, registered VMs
    /// included (see `adopt`).
    pub fn start_pinned(dir: &Path, tasks: &tokio::runtime::Handle) -> Result<Self, BpfError> {
        let pin = |name: &str| dir.join(name);
        let cpus = aya::util::nr_cpus().map_err(|(path, e)| BpfError::WhoAmI(format!("reading {path}: {e}")))?.get();
        if pin(PIN_LINK).exists() {
            let open = |name: &'static str| {
                let data = MapData::from_pin(pin(name)).map_err(BpfError::map(name))?;
                aya::maps::Map::from_map_data(data).map_err(BpfError::map(name))
            };
            let active = match open(ACTIVE)? {
                aya::maps::Map::Array(data) => data,
                _ => return Err(BpfError::NoMap(ACTIVE)),
            };
            return Ok(Self {
                states: HashOfMaps::try_from(open(VM_STATE)?).map_err(BpfError::map(VM_STATE))?,
                stats: HashOfMaps::try_from(open(VM_STATS)?).map_err(BpfError::map(VM_STATS))?,
                active,
                started: Some(HashMap::try_from(open(PIN_STARTED)?).map_err(BpfError::map(PIN_STARTED))?),
                cpus,
                pins: Some(dir.to_path_buf()),
                ebpf: None,
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| BpfError::Pin(dir.to_path_buf(), e.to_string()))?;
        let (mut ebpf, states, stats, active, cpus) = Self::load(tasks, Some(dir))?;
        let started: HashMap<MapData, u32, u64> = HashMap::create(MAX_VMS, 0).map_err(BpfError::map(PIN_STARTED))?;
        started.map().pin(pin(PIN_STARTED)).map_err(|e| BpfError::Pin(pin(PIN_STARTED), e.to_string()))?;
        for ((program, tracepoint), link) in PROGRAMS.into_iter().zip(PIN_LINKS) {
            load::attach_raw_tracepoint_pinned(&mut ebpf, program, tracepoint, &pin(link))?;
        }
        Ok(Self {
            states,
            stats,
            active,
            started: Some(started),
            cpus,
            pins: Some(dir.to_path_buf()),
            ebpf: Some(ebpf),
        })
    }

    #[allow(clippy::type_complexity)]
    fn load(
        tasks: &tokio::runtime::Handle,
        pins: Option<&Path>,
    ) -> Result<
        (
            Ebpf,
            HashOfMaps<MapData, u32, Array<MapData, VmState>>,
            HashOfMaps<MapData, u32, Array<MapData, VmStats>>,
            MapData,
            u32,
        ),
        BpfError,
    > {
        let cpus = aya::util::nr_cpus().map_err(|(path, e)| BpfError::WhoAmI(format!("reading {path}: {e}")))?.get();
        let mut ebpf = load::load_sized(load::Object::Doorbell, &[(ACTIVE, cpus)])?;
        super::forward_logs(&mut ebpf, tasks);
        // Taken out of the object, and pinned (by the service) before use.
        let mut take = |name: &'static str| -> Result<aya::maps::Map, BpfError> {
            let map = ebpf.take_map(name).ok_or(BpfError::NoMap(name))?;
            if let Some(dir) = pins {
                let data = match &map {
                    aya::maps::Map::HashOfMaps(data) | aya::maps::Map::Array(data) => data,
                    _ => return Err(BpfError::NoMap(name)),
                };
                data.pin(dir.join(name)).map_err(|e| BpfError::Pin(dir.join(name), e.to_string()))?;
            }
            Ok(map)
        };
        let states = HashOfMaps::try_from(take(VM_STATE)?).map_err(BpfError::map(VM_STATE))?;
        let stats = HashOfMaps::try_from(take(VM_STATS)?).map_err(BpfError::map(VM_STATS))?;
        let active = match take(ACTIVE)? {
            aya::maps::Map::Array(data) => data,
            _ => return Err(BpfError::NoMap(ACTIVE)),
        };
        Ok((ebpf, states, stats, active, cpus))
    }

    /// Removes the pins (the service stops with no VM left to serve): the
    /// program detaches and the maps go once nothing holds them.
    pub fn unpin(&mut self) {
        if let Some(dir) = self.pins.take() {
            for name in [PIN_LINKS[0], PIN_LINKS[1], VM_STATE, VM_STATS, ACTIVE, PIN_STARTED] {
                let _ = std::fs::remove_file(dir.join(name));
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }

    /// Of the VMs registered before this host took over the pins: those
    /// whose VMM still runs (kept), after unregistering the others.
    pub fn adopt(&mut self) -> Vec<u32> {
        let mut live = Vec::new();
        for tgid in self.registered() {
            let recorded = self.started.as_ref().and_then(|s| s.get(&tgid, 0).ok());
            if recorded.is_some() && recorded == process_start(tgid) {
                live.push(tgid);
            } else {
                self.unregister(tgid);
            }
        }
        live
    }

    /// The host's possible CPUs (the activity map's entries).
    pub fn cpus(&self) -> u32 {
        self.cpus
    }

    /// This process's host tgid (see `whoami`), asked of the kernel.
    pub fn whoami(&mut self) -> Result<u32, BpfError> {
        super::whoami::host_tgid(self.ebpf.as_mut().ok_or(BpfError::NoProgram("whoami"))?)
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
        if let (Some(started), Some(at)) = (self.started.as_mut(), process_start(host_tgid)) {
            let _ = started.insert(&host_tgid, &at, 0);
        }
        Ok(VmMaps { state: dup(state.map())?, stats: read_only(stats.map())?, active: read_only(&self.active)? })
    }

    /// Stops serving `host_tgid`'s VM (its maps go when its VMM lets go).
    pub fn unregister(&mut self, host_tgid: u32) {
        let _ = self.states.remove(&host_tgid);
        let _ = self.stats.remove(&host_tgid);
        if let Some(started) = self.started.as_mut() {
            let _ = started.remove(&host_tgid);
        }
    }

    /// The counter words of `host_tgid`'s VM (`doorbell::stat`), if registered.
    pub fn counters(&self, host_tgid: u32) -> Option<Vec<u64>> {
        let stats = self.stats.get(&host_tgid, 0).ok()?;
        let value: VmStats = stats.get(&0, 0).ok()?;
        Some(value.words.to_vec())
    }

    /// The registered VMs' host tgids.
    pub fn registered(&self) -> Vec<u32> {
        self.states.keys().filter_map(Result::ok).collect()
    }
}

/// When process `pid` started (field 22 of /proc/PID/stat, in clock
/// ticks since boot), if it runs.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
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
