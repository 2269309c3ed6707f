//! The `xevtchn` command line: one subcommand per file, doc comments as help.

pub mod bench;
pub mod live_view;
pub mod run;
pub mod serve;
pub mod trace;

use clap::{Parser, Subcommand};

/// Xen event channels for KVM guests, delivered in the kernel by eBPF.
#[derive(Debug, Parser)]
#[command(name = "xevtchn", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in Xen guest with a workload and report what it saw.
    Run(run::RunArgs),
    /// Measure userspace against bpf delivery, side by side.
    Bench(bench::BenchArgs),
    /// Watch upcall delivery in any KVM process: sends, injections, EOIs, latencies.
    Trace(trace::TraceArgs),
    /// Serve every VM's doorbells in the kernel, one service per host: VMMs
    /// register over a Unix socket and need no BPF privileges.
    Serve(serve::ServeArgs),
}
