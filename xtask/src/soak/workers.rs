//! The soak's four loops, each on a thread of its own, and what they tally.

use std::os::unix::process::ExitStatusExt;
use std::{
    io::Read,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

/// A log growing faster than this (all children together) fails the soak:
/// the guest-caused lines are limited to 5 a second per VM.
const LOG_BYTES_PER_MINUTE: u64 = 256 * 1024;

#[derive(Clone)]
pub struct Context {
    pub bin: PathBuf,
    pub socket: PathBuf,
    pub stop: Arc<AtomicBool>,
    pub tally: Arc<Tally>,
}

#[derive(Default)]
pub struct Tally {
    rebind_runs: AtomicU64,
    rebind_moves: AtomicU64,
    fuzz_runs: AtomicU64,
    fuzz_calls: AtomicU64,
    traces: AtomicU64,
    kills: AtomicU64,
    sent: AtomicU64,
    log_bytes: AtomicU64,
    seeds: Mutex<Vec<u64>>,
    failure: Mutex<Option<String>>,
}

impl Tally {
    pub fn log_bytes(&self) -> u64 {
        self.log_bytes.load(Relaxed)
    }

    pub fn first_failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn fail(&self, what: String) {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(what);
    }

    pub fn summary(&self, elapsed: Duration) -> String {
        let seeds = self.seeds.lock().unwrap_or_else(|p| p.into_inner());
        format!(
            "{} s: {} rebind runs ({} ports moved), {} fuzz runs ({} calls; seeds {}..={}), {} traces, {} VMs killed, {} sends, {} KiB of log",
            elapsed.as_secs(),
            self.rebind_runs.load(Relaxed),
            self.rebind_moves.load(Relaxed),
            self.fuzz_runs.load(Relaxed),
            self.fuzz_calls.load(Relaxed),
            seeds.first().copied().unwrap_or(0),
            seeds.last().copied().unwrap_or(0),
            self.traces.load(Relaxed),
            self.kills.load(Relaxed),
            self.sent.load(Relaxed),
            self.log_bytes() / 1024,
        )
    }

    /// Each loop ran at least once, and the log stayed small.
    pub fn check_enough(&self, elapsed: Duration) -> Result<()> {
        for (what, n) in [
            ("rebind runs", &self.rebind_runs),
            ("fuzz runs", &self.fuzz_runs),
            ("traces", &self.traces),
            ("kills", &self.kills),
        ] {
            if n.load(Relaxed) == 0 {
                bail!("the soak made no {what}: too short to prove anything");
            }
        }
        let per_minute = self.log_bytes() * 60 / elapsed.as_secs().max(1);
        if per_minute > LOG_BYTES_PER_MINUTE {
            bail!("the log grew {per_minute} bytes a minute (at most {LOG_BYTES_PER_MINUTE})");
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
pub enum Worker {
    Rebind,
    Fuzz,
    Tracer,
    Killer,
}

impl Worker {
    pub const ALL: [Worker; 4] = [Worker::Rebind, Worker::Fuzz, Worker::Tracer, Worker::Killer];

    pub fn spawn(self, ctx: Context) -> Result<JoinHandle<()>> {
        let name = match self {
            Worker::Rebind => "soak-rebind",
            Worker::Fuzz => "soak-fuzz",
            Worker::Tracer => "soak-tracer",
            Worker::Killer => "soak-killer",
        };
        Ok(std::thread::Builder::new().name(name.into()).spawn(move || {
            let mut round = 0u64;
            while !ctx.stop.load(Relaxed) && ctx.tally.first_failure().is_none() {
                if let Err(e) = self.once(&ctx, round) {
                    ctx.tally.fail(format!("{name}: {e:#}"));
                }
                round += 1;
            }
        })?)
    }

    fn once(self, ctx: &Context, round: u64) -> Result<()> {
        let socket = ctx.socket.to_str().context("a UTF-8 socket path")?;
        let t = &ctx.tally;
        match self {
            Worker::Rebind => {
                let args = ["--workload", "rebind", "--vcpus", "8", "--duration", "8", "--rate", "2000"];
                let r = run_vm(ctx, &[&args[..], &["--backend", "bpf", "--service", socket]].concat())?;
                t.rebind_runs.fetch_add(1, Relaxed);
                t.rebind_moves.fetch_add(r["moves"].as_u64().unwrap_or(0), Relaxed);
            }
            Worker::Fuzz => {
                let seed = 1000 + round;
                let backend: &[&str] = if round.is_multiple_of(2) {
                    &["--backend", "bpf", "--service", socket]
                } else {
                    &["--backend", "userspace"]
                };
                let seed_text = seed.to_string();
                let args = ["--workload", "fuzz", "--vcpus", "3", "--duration", "8", "--seed", &seed_text];
                let r = run_vm(ctx, &[&args[..], backend].concat()).with_context(|| format!("seed {seed}"))?;
                t.seeds.lock().unwrap_or_else(|p| p.into_inner()).push(seed);
                t.fuzz_runs.fetch_add(1, Relaxed);
                t.fuzz_calls.fetch_add(r["fuzz_calls"].as_u64().unwrap_or(0), Relaxed);
            }
            Worker::Tracer => {
                let out = finish(ctx, spawn(ctx, &["trace", "--json", "--duration", "2", "--interval", "500"])?, None)?;
                // The soak's end may signal a tracer that has only just
                // started, before it handles SIGTERM: that one dies of it.
                let stopped_at_start = ctx.stop.load(Relaxed) && out.0.signal() == Some(libc::SIGTERM);
                if !out.0.success() && !stopped_at_start {
                    bail!("xevtchn trace ended with {}", out.0);
                }
                t.traces.fetch_add(1, Relaxed);
            }
            Worker::Killer => {
                let args = ["run", "--workload", "flood", "--duration", "60", "--backend", "bpf", "--service", socket];
                let child = spawn(ctx, &[&args[..], &["--json"]].concat())?;
                // Killed at some moment of its life: set-up, canary, flood.
                let after = Duration::from_millis(200 + (round * 7919) % 1500);
                let (status, _) = finish(ctx, child, Some(after))?;
                match status.code() {
                    None => _ = t.kills.fetch_add(1, Relaxed),
                    // The soak's end stopped it first (SIGTERM: it reports).
                    Some(0) if ctx.stop.load(Relaxed) => {}
                    Some(_) => bail!("a VM to be killed ended by itself first: {status}"),
                }
            }
        }
        Ok(())
    }
}

fn spawn(ctx: &Context, args: &[&str]) -> Result<Child> {
    Command::new(&ctx.bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting xevtchn {}", args.join(" ")))
}

/// Waits for `child` (SIGKILL after `kill_after`; SIGTERM, which makes a
/// run report at once, when the soak stops); its status and stdout. Its
/// log counts toward the soak's, and a panic in it fails the soak.
fn finish(ctx: &Context, mut child: Child, kill_after: Option<Duration>) -> Result<(std::process::ExitStatus, String)> {
    let started = Instant::now();
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = child.stdout.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut termed = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let signal = match kill_after {
            Some(after) if started.elapsed() >= after => Some(libc::SIGKILL),
            _ if ctx.stop.load(Relaxed) && !termed => Some(libc::SIGTERM),
            _ => None,
        };
        if let Some(signal) = signal {
            termed = true;
            // SAFETY: kill(2) on our own, unreaped child.
            unsafe { libc::kill(child.id() as i32, signal) };
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = reader.join().unwrap_or_default();
    ctx.tally.log_bytes.fetch_add(log.len() as u64, Relaxed);
    if log.contains("panicked") {
        bail!("xevtchn panicked:\n{log}");
    }
    Ok((status, out_reader.join().unwrap_or_default()))
}

/// `xevtchn run ARGS --json` to its end: it must be clean.
fn run_vm(ctx: &Context, args: &[&str]) -> Result<Value> {
    let child = spawn(ctx, &[&["run"][..], args, &["--json"]].concat())?;
    let (status, stdout) = finish(ctx, child, None)?;
    let report: Value = serde_json::from_str(&stdout)
        .with_context(|| format!("xevtchn run {args:?} ended with {status}, no report"))?;
    if !status.success() || report["lost"] != 0 || report["errors"] != 0 || report["unaccounted_sends"] != 0 {
        bail!("xevtchn run {args:?} ended with {status}: {report}");
    }
    ctx.tally.sent.fetch_add(report["sent"].as_u64().unwrap_or(0), Relaxed);
    Ok(report)
}
