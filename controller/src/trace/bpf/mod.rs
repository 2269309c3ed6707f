//! The tracing programs: attach, configure, detach and re-attach them.
//! What they counted is read by `snapshot`, what xevtchn's own fast paths
//! decided by `fast_paths`.

mod discovery;
mod ended;
pub mod fast_paths;
mod snapshot;

use aya::{
    Ebpf,
    maps::{Array, MapData, RingBuf},
};
use xevtchn_common::{layout, trace::TraceConfig, two_level::NR_PORTS};

pub use fast_paths::{FastPathOutcomes, FastPaths};
pub use snapshot::Snapshot;

use crate::bpf::{BpfError, load, whoami};

const CONFIG: &str = "TRACE_CONFIG";
const EVENTS: &str = "TRACE_EVENTS";
const NEW_VMS: &str = "TRACE_NEW_VMS";

/// (program, tracepoint) pairs, raw tracepoints: the hot ones (no perf
/// submission per event).
const RAW_HOOKS: &[(&str, &str)] = &[
    ("trace_kvm_mmio", "kvm_mmio"),
    ("trace_kvm_userspace_exit", "kvm_userspace_exit"),
    ("trace_kvm_apic_accept_irq", "kvm_apic_accept_irq"),
    ("trace_kvm_vcpu_wakeup", "kvm_vcpu_wakeup"),
    ("trace_kvm_pio", "kvm_pio"),
];
/// Counting MSIs puts a third program on every in-kernel send's path
/// (after kvm_mmio and kvm_apic_accept_irq), so it is asked for.
const MSI_HOOK: (&str, &str) = ("trace_kvm_msi_set_irq", "kvm_msi_set_irq");
/// Classic tracepoints (category `kvm`), whose record layout these read.
const HOOKS: &[(&str, &str)] = &[("trace_kvm_eoi", "kvm_eoi"), ("trace_kvm_set_irq", "kvm_set_irq")];

/// What to trace, and how finely.
#[derive(Debug, Clone, Copy)]
pub struct TraceOptions {
    /// The VMM process to trace; 0: every KVM process.
    pub tgid: u32,
    /// Also stream one event per joined send and Xen hypercall (then every
    /// send is timed).
    pub events: bool,
    /// Time one send in this many of each vCPU thread, and one injection
    /// in this many of each APIC and vector, for the latency histograms
    /// (rounded up to a power of two; 1: every one). Counts are exact
    /// either way.
    pub time_one_in: u32,
    /// Also count MSIs (kvm_msi_set_irq).
    pub msi: bool,
}

/// The default of `TraceOptions::time_one_in`. Reading the clock is the
/// dearest step of a hook: timing every send costs flood several percent
/// more (README, Results).
pub const DEFAULT_TIME_ONE_IN: u32 = 16;

impl TraceOptions {
    pub fn new(tgid: u32) -> Self {
        Self { tgid, events: false, time_one_in: DEFAULT_TIME_ONE_IN, msi: false }
    }

    /// `TraceConfig::timing_mask`.
    fn timing_mask(&self) -> u32 {
        if self.events { 0 } else { self.time_one_in.max(1).checked_next_power_of_two().unwrap_or(1 << 31) - 1 }
    }

    fn config(&self) -> TraceConfig {
        TraceConfig {
            tgid: self.tgid,
            enabled: 1,
            doorbell_base: layout::doorbell(0),
            doorbell_end: layout::doorbell(NR_PORTS),
            events: u32::from(self.events),
            timing_mask: self.timing_mask(),
        }
    }
}

pub struct Tracer {
    config: Array<MapData, TraceConfig>,
    events: Option<RingBuf<MapData>>,
    snapshot: snapshot::Maps,
    ended: ended::EndedVms,
    discovery: discovery::Discovery,
    options: TraceOptions,
    /// Empty while detached.
    attachments: Vec<load::Attachment>,
    ebpf: Ebpf,
}

impl Tracer {
    /// Loads the tracing programs and attaches them as `options` says.
    pub fn attach(options: TraceOptions) -> Result<Self, BpfError> {
        Self::attach_loaded(load::load_object(load::Object::Trace)?, options)
    }

    /// Traces this process's own VM (`options.tgid` is replaced by this
    /// process's host tgid, which the programs see, also inside a PID
    /// namespace).
    pub fn attach_self(mut options: TraceOptions) -> Result<Self, BpfError> {
        let mut ebpf = load::load_object(load::Object::Trace)?;
        options.tgid = whoami::host_tgid(&mut ebpf)?;
        Self::attach_loaded(ebpf, options)
    }

    fn attach_loaded(mut ebpf: Ebpf, options: TraceOptions) -> Result<Self, BpfError> {
        let mut config: Array<MapData, TraceConfig> =
            Array::try_from(ebpf.take_map(CONFIG).ok_or(BpfError::NoMap(CONFIG))?).map_err(BpfError::map(CONFIG))?;
        config.set(0, &options.config(), 0).map_err(BpfError::map(CONFIG))?;
        let attachments = attach_hooks(&mut ebpf, &options)?;
        let events = ebpf.take_map(EVENTS).map(RingBuf::try_from).transpose().map_err(BpfError::map(EVENTS))?;
        let snapshot = snapshot::Maps::take(&mut ebpf)?;
        let ended = ended::EndedVms::new(
            aya::maps::HashMap::try_from(ebpf.take_map(ended::MAP).ok_or(BpfError::NoMap(ended::MAP))?)
                .map_err(BpfError::map(ended::MAP))?,
        );
        let new_vms = RingBuf::try_from(ebpf.take_map(NEW_VMS).ok_or(BpfError::NoMap(NEW_VMS))?)
            .map_err(BpfError::map(NEW_VMS))?;
        let discovery =
            discovery::Discovery::start(FastPaths::new(options.tgid), new_vms).map_err(BpfError::Discovery)?;
        Ok(Self { config, events, snapshot, ended, discovery, options, attachments, ebpf })
    }

    /// Detaches every hook (maps and loaded programs stay): the traced VMs
    /// run as if untraced until `reattach`. For measuring the overhead.
    pub fn detach(&mut self) -> Result<(), BpfError> {
        let mut first_error = None;
        for attachment in std::mem::take(&mut self.attachments) {
            if let Err(e) = load::detach(&mut self.ebpf, attachment) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Attaches the hooks again, configured by `options`. On error nothing
    /// is attached and the configuration is the previous one.
    pub fn reattach(&mut self, options: TraceOptions) -> Result<(), BpfError> {
        self.detach()?;
        self.config.set(0, &options.config(), 0).map_err(BpfError::map(CONFIG))?;
        match attach_hooks(&mut self.ebpf, &options) {
            Ok(attachments) => {
                self.attachments = attachments;
                self.options = options;
                Ok(())
            }
            Err(e) => {
                let _ = self.config.set(0, &self.options.config(), 0);
                Err(e)
            }
        }
    }

    /// The traced VMM process (host tgid; 0: every one).
    pub fn tgid(&self) -> u32 {
        self.options.tgid
    }

    /// The event stream, once (None after the first call).
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Events the ring buffer had no room for, so far.
    pub fn dropped_events(&self) -> Result<u64, BpfError> {
        self.snapshot.dropped_events()
    }

    /// Everything counted so far, summed over CPUs, with what the traced
    /// xevtchn VMs' fast paths decided.
    pub fn snapshot(&mut self) -> Result<Snapshot, BpfError> {
        let maps = &self.snapshot;
        let mut snapshot = self.ended.settle(|| maps.read())?;
        let fast_paths = self.discovery.fast_paths();
        snapshot.fast_paths = fast_paths.read();
        drop(fast_paths);
        snapshot.xevtchn = self.discovery.xevtchn_vms(snapshot.vms.keys().copied());
        snapshot.xevtchn.extend(snapshot.fast_paths.keys());
        snapshot.msis_counted = self.options.msi;
        Ok(snapshot)
    }
}

/// Attaches the tracing programs `options` asks for to their tracepoints:
/// all of them, or (on error) none.
fn attach_hooks(ebpf: &mut Ebpf, options: &TraceOptions) -> Result<Vec<load::Attachment>, BpfError> {
    let mut attachments = Vec::new();
    if let Err(e) = attach_each(ebpf, options, &mut attachments) {
        for attachment in attachments {
            let _ = load::detach(ebpf, attachment);
        }
        return Err(e);
    }
    Ok(attachments)
}

fn attach_each(ebpf: &mut Ebpf, options: &TraceOptions, out: &mut Vec<load::Attachment>) -> Result<(), BpfError> {
    let msi = options.msi.then_some(&MSI_HOOK);
    for (program, tracepoint) in RAW_HOOKS.iter().chain(msi) {
        out.push(load::attach_raw_tracepoint(ebpf, program, tracepoint)?);
    }
    for (program, tracepoint) in HOOKS {
        out.push(load::attach_tracepoint(ebpf, program, "kvm", tracepoint)?);
    }
    // Only hosts with KVM's Xen support have (and fire) this one.
    if std::path::Path::new("/sys/kernel/tracing/events/kvm/kvm_xen_hypercall").is_dir() {
        out.push(load::attach_tracepoint(ebpf, "trace_kvm_xen_hypercall", "kvm", "kvm_xen_hypercall")?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_masks_are_powers_of_two_minus_one() {
        let mask = |time_one_in, events| TraceOptions { time_one_in, events, ..TraceOptions::new(0) }.timing_mask();
        assert_eq!(mask(16, false), 15);
        assert_eq!(mask(1, false), 0);
        assert_eq!(mask(0, false), 0);
        assert_eq!(mask(3, false), 3, "rounded up to 4");
        assert_eq!(mask(u32::MAX, false), (1 << 31) - 1);
        assert_eq!(mask(16, true), 0, "--events times every send");
    }

    #[test]
    fn msis_are_counted_only_when_asked() {
        assert!(!TraceOptions::new(7).msi);
        assert!(!RAW_HOOKS.contains(&MSI_HOOK));
    }
}
