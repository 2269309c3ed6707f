//! `xevtchn serve`: the host's doorbell service (see `service`).

use std::{path::PathBuf, process::ExitCode};

use anyhow::Result;
use clap::Args;

use super::run::UsageError;
use crate::service::{
    DEFAULT_METRICS, DEFAULT_PINS, DEFAULT_SOCKET,
    server::{self, ServeConfig},
};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The Unix socket where VMMs register their VMs.
    #[arg(long, default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Permission bits of the socket, in octal: who may register VMs.
    #[arg(long, default_value = "0660", value_parser = octal_mode)]
    pub socket_mode: u32,
    /// Group that owns the socket (its members may register VMs with mode 0660).
    #[arg(long)]
    pub socket_group: Option<String>,
    /// Where the program and its maps are pinned (BPF filesystem): they
    /// outlive the service, so that a crash or restart loses no event; a
    /// service stopped with no VM registered removes them.
    #[arg(long, default_value = DEFAULT_PINS)]
    pub pin_dir: PathBuf,
    /// Serve OpenMetrics (Prometheus text) at this address, /metrics.
    #[arg(long, default_value = DEFAULT_METRICS)]
    pub metrics: std::net::SocketAddr,
    /// Serve no metrics.
    #[arg(long, conflicts_with = "metrics")]
    pub no_metrics: bool,
}

fn octal_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!("{text:?} is not a permission mode in octal, like 0660")),
    }
}

pub fn serve(args: &ServeArgs) -> Result<ExitCode> {
    if args.socket.as_os_str().is_empty() {
        return Err(UsageError("--socket needs a path".into()).into());
    }
    server::serve(&ServeConfig {
        socket: args.socket.clone(),
        pins: args.pin_dir.clone(),
        mode: args.socket_mode,
        group: args.socket_group.clone(),
        metrics: (!args.no_metrics).then_some(args.metrics),
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::octal_mode;

    #[test]
    fn modes_are_octal() {
        assert_eq!(octal_mode("0660"), Ok(0o660));
        assert_eq!(octal_mode("666"), Ok(0o666));
        assert!(octal_mode("0999").is_err() && octal_mode("1777").is_err());
    }
}
