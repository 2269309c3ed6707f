//! The `xevtchn` command line: one subcommand per file, doc comments as help.

pub mod bench;
pub mod docs;
pub mod live_view;
pub mod run;
pub mod serve;
pub mod signals;
pub mod trace;

use clap::{Parser, Subcommand};

/// Xen event channels for KVM guests, delivered in the kernel by eBPF.
#[derive(Debug, Parser)]
#[command(name = "xevtchn", version, arg_required_else_help = true)]
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the man page, or write every page with --dir.
    Man(docs::ManArgs),
}

/// Whether `err` says the host lacks something the command needs
/// (privileges, /dev/kvm, BPF support, tracefs, a built BPF object): exit
/// status 3, against 1 for lost events and other failures.
pub fn host_lacks(err: &anyhow::Error) -> bool {
    use crate::{bpf::BpfError, vmm::VmmError};
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<BpfError>(),
            Some(BpfError::Permission(_) | BpfError::NotBuilt | BpfError::Pin(..) | BpfError::Attach { .. })
        ) || matches!(cause.downcast_ref::<VmmError>(), Some(VmmError::NoKvm | VmmError::KvmPermission(_)))
    })
}
