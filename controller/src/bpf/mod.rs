//! Loading xevtchn's BPF object and attaching its programs.

pub mod doorbell;
pub mod doorbell_host;
pub mod error;
pub mod load;
pub mod mapped;
pub mod mmio_counter;
pub mod whoami;

pub use error::BpfError;

/// Forwards the programs' aya-log records (diagnostics off the hot path)
/// to the controller's logger, from a Tokio task.
pub fn forward_logs(ebpf: &mut aya::Ebpf, tasks: &tokio::runtime::Handle) {
    let logger = match aya_log::EbpfLogger::init(ebpf) {
        Ok(logger) => logger,
        Err(e) => {
            log::debug!("no BPF log forwarding: {e}");
            return;
        }
    };
    let _entered = tasks.enter();
    // SAFETY: the logger owns its ring buffer's fd and flushing neither
    // closes nor replaces it, as AsyncFd::register_with_interest requires.
    let registered = unsafe { tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
    match registered {
        Ok(mut logger) => {
            tasks.spawn(async move {
                while let Ok(mut ready) = logger.readable_mut().await {
                    ready.get_inner_mut().flush();
                    ready.clear_ready();
                }
            });
        }
        Err(e) => log::warn!("BPF log forwarding unavailable: {e}"),
    }
}
