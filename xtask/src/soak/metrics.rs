//! What the soak samples, and what counts as a leak.

use std::{process::Command, time::Duration};

use anyhow::{Context, Result};

#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Duration,
    /// The service's resident memory and open file descriptors.
    pub service_rss_kib: u64,
    pub service_fds: u64,
    /// BPF programs and maps on the host (bpftool).
    pub bpf_progs: u64,
    pub bpf_maps: u64,
    /// /proc/meminfo: per-CPU allocations and unreclaimable slab.
    pub percpu_kib: u64,
    pub sunreclaim_kib: u64,
    /// Bytes every child wrote to its log so far.
    pub log_bytes: u64,
}

impl Sample {
    pub fn header() -> String {
        format!(
            "{:>6} {:>12} {:>11} {:>9} {:>8} {:>10} {:>14} {:>9}",
            "time", "service RSS", "service fds", "BPF progs", "BPF maps", "Percpu", "SUnreclaim", "log"
        )
    }

    pub fn row(&self) -> String {
        format!(
            "{:>5}s {:>8} KiB {:>11} {:>9} {:>8} {:>6} KiB {:>10} KiB {:>5} KiB",
            self.at.as_secs(),
            self.service_rss_kib,
            self.service_fds,
            self.bpf_progs,
            self.bpf_maps,
            self.percpu_kib,
            self.sunreclaim_kib,
            self.log_bytes / 1024
        )
    }
}

pub fn sample(service: u32, log_bytes: u64, at: Duration) -> Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{service}/status")).context("the service has gone")?;
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    Ok(Sample {
        at,
        service_rss_kib: field_kib(&status, "VmRSS:"),
        service_fds: std::fs::read_dir(format!("/proc/{service}/fd"))?.count() as u64,
        bpf_progs: bpftool_count("prog")?,
        bpf_maps: bpftool_count("map")?,
        percpu_kib: field_kib(&meminfo, "Percpu:"),
        sunreclaim_kib: field_kib(&meminfo, "SUnreclaim:"),
        log_bytes,
    })
}

fn field_kib(text: &str, name: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// How many BPF programs or maps the host has (`bpftool prog|map list -j`).
fn bpftool_count(what: &str) -> Result<u64> {
    let out = Command::new("bpftool").args([what, "list", "-j"]).output().context("bpftool (cargo xtask setup)")?;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).context("bpftool's JSON")?;
    Ok(list.as_array().map_or(0, |a| a.len() as u64))
}

/// Memory that may come and go (allocator caches, the kernel's slabs)
/// but must not keep growing: at most this much more at the end.
const SERVICE_RSS_SLACK_KIB: u64 = 16 * 1024;
/// The per-CPU allocator keeps freed chunks for a while: a few MiB come
/// and go (a leak per VM shows over the thousands a long soak kills).
const PERCPU_SLACK_KIB: u64 = 4 * 1024;
const SUNRECLAIM_SLACK_KIB: u64 = 32 * 1024;

/// What leaked between `before` and `after` (both with nothing running
/// but the service), and memory that grew through the run's second half.
pub fn leaks(before: &Sample, after: &Sample, during: &[Sample], elapsed: Duration) -> Vec<String> {
    let mut found = Vec::new();
    for (what, b, a) in
        [("BPF programs", before.bpf_progs, after.bpf_progs), ("BPF maps", before.bpf_maps, after.bpf_maps)]
    {
        if a > b {
            found.push(format!("{what}: {b} before, {a} after everything stopped"));
        }
    }
    if after.service_fds > before.service_fds {
        found.push(format!("service fds: {} before, {} after", before.service_fds, after.service_fds));
    }
    let grew = |what: &str, b: u64, a: u64, slack: u64, found: &mut Vec<String>| {
        if a > b + slack {
            found.push(format!("{what}: {b} KiB before, {a} KiB after (more than {slack} KiB more)"));
        }
    };
    grew("service RSS", before.service_rss_kib, after.service_rss_kib, SERVICE_RSS_SLACK_KIB, &mut found);
    grew("Percpu", before.percpu_kib, after.percpu_kib, PERCPU_SLACK_KIB, &mut found);
    grew("SUnreclaim", before.sunreclaim_kib, after.sunreclaim_kib, SUNRECLAIM_SLACK_KIB, &mut found);
    // A trend: the service's memory at the end of the run against its middle.
    if let (Some(middle), Some(end)) = (during.get(during.len() / 2), during.last())
        && elapsed >= Duration::from_secs(600)
    {
        grew(
            "service RSS through the run's second half",
            middle.service_rss_kib,
            end.service_rss_kib,
            SERVICE_RSS_SLACK_KIB / 2,
            &mut found,
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(bpf_progs: u64, service_rss_kib: u64) -> Sample {
        Sample {
            at: Duration::ZERO,
            service_rss_kib,
            service_fds: 10,
            bpf_progs,
            bpf_maps: 20,
            percpu_kib: 1000,
            sunreclaim_kib: 50_000,
            log_bytes: 0,
        }
    }

    #[test]
    fn a_program_left_behind_or_memory_kept_is_a_leak() {
        assert!(leaks(&quiet(5, 4000), &quiet(5, 4100), &[], Duration::from_secs(60)).is_empty());
        assert_eq!(leaks(&quiet(5, 4000), &quiet(6, 4000), &[], Duration::from_secs(60)).len(), 1);
        let found = leaks(&quiet(5, 4000), &quiet(5, 40_000), &[], Duration::from_secs(60));
        assert!(found[0].starts_with("service RSS"), "{found:?}");
    }

    #[test]
    fn meminfo_fields_are_read_in_kib() {
        let text = "MemTotal: 100 kB\nPercpu:      5120 kB\nSUnreclaim:   77 kB\n";
        assert_eq!((field_kib(text, "Percpu:"), field_kib(text, "SUnreclaim:")), (5120, 77));
    }
}
