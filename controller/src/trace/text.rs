//! `xevtchn trace` as plain lines (no terminal, no --json).

use super::{
    events::EventLine,
    report::{Interval, OVERFLOW_PID},
};

/// One `--events` line: `at` is seconds since the trace began, `comm` the
/// sending thread's name (a vCPU thread of its VMM, usually).
pub fn print_event(at: f64, comm: &str, line: &EventLine) {
    match line {
        EventLine::Send { pid, tid, cpu, port, apicid, vector, path, latency_ns, .. } => println!(
            "{at:>12.6} s  cpu {cpu:<3} {comm:<16} pid {pid} tid {tid}: send port {port} -> apic {apicid} vector {vector:#04x} via {path}, injected after {latency_ns} ns"
        ),
        EventLine::XenHypercall { pid, tid, cpu, call, .. } => println!(
            "{at:>12.6} s  cpu {cpu:<3} {comm:<16} pid {pid} tid {tid}: xen hypercall {} {} args {:?}",
            call.name,
            call.op.unwrap_or(""),
            call.args
        ),
    }
}

/// An interval report (`kind` "interval") or the totals ("total").
pub fn print_interval(kind: &str, i: &Interval) {
    if kind == "total" {
        println!("== total over {:.1} s", i.seconds);
    }
    if i.vms.is_empty() {
        println!("{kind}: no KVM activity");
    }
    if !i.ports.is_empty() {
        let busiest: Vec<String> = i.ports.iter().take(8).map(|p| format!("{}:{}", p.port, p.sends)).collect();
        println!("sends by port (port:sends): {}", busiest.join(" "));
    }
    for vm in &i.vms {
        if vm.pid == OVERFLOW_PID {
            let injections: u64 = vm.vectors.iter().map(|v| v.injections).sum();
            println!(
                "other VMs (tracer slots full): {} userspace exits, {} MMIO, {injections} injections",
                vm.userspace_exits, vm.mmio
            );
            continue;
        }
        let sends = match (vm.sends_per_s, vm.sends_in_kernel, vm.sends_to_userspace) {
            (Some(rate), Some(kernel), Some(userspace)) => format!(
                "{rate:.0} sends/s ({kernel} in kernel, {userspace} via userspace: {} injected, {} not), ",
                vm.userspace_sends_injected.unwrap_or(0),
                vm.userspace_sends_not_injected.unwrap_or(0)
            ),
            _ => String::new(),
        };
        println!(
            "pid {}: {sends}{} userspace exits, {} MMIO, {} MSIs, {} wakeups",
            vm.pid,
            vm.userspace_exits,
            vm.mmio,
            vm.msi_set_irq.map_or("-".to_string(), |n| n.to_string()),
            vm.vcpu_wakeups
        );
        for v in &vm.fast_path {
            println!(
                "  vcpu {:>2}: {:>8.0} fast sends/s: {} raised, {} coalesced, {} masked, {} already pending; {} spurious injections",
                v.vcpu,
                v.fast_sends_per_s,
                v.outcomes.raised,
                v.outcomes.coalesced,
                v.outcomes.masked,
                v.outcomes.already_pending,
                v.spurious_injections
            );
        }
        for v in vm.vectors.iter().filter(|v| v.injections + v.eois > 0) {
            // kvm_eoi reports -1 when no vector was in service.
            if v.vector == u32::MAX {
                println!("  apic {:>2}: {} EOIs with no vector in service", v.apicid, v.eois);
                continue;
            }
            let ns = |x: Option<u64>| x.map_or("-".to_string(), |n| format!("<{n}"));
            println!(
                "  apic {:>2} vector {:#04x}: {:>8.0} injections/s, {} EOIs; send->inject p50 {} p99 {} ns; inject->EOI p50 {} p99 {} ns",
                v.apicid,
                v.vector,
                v.injections_per_s,
                v.eois,
                ns(v.send_to_inject_ns.percentiles.p50),
                ns(v.send_to_inject_ns.percentiles.p99),
                ns(v.inject_to_eoi_ns.percentiles.p50),
                ns(v.inject_to_eoi_ns.percentiles.p99)
            );
        }
    }
}
