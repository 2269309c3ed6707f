//! SIGINT and SIGTERM for the commands that hold a terminal or owe a
//! report: they stop cleanly instead of dying in raw mode.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};

/// A flag raised by SIGINT or SIGTERM, for a loop that polls it (the live
/// trace view: in raw mode Ctrl-C is a key, but `kill` still signals).
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, flag.clone()).context("installing the SIGINT/SIGTERM handler")?;
    }
    Ok(flag)
}

pub fn raised(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Acquire)
}

/// For `run`, whose guest writes its report only when it ends: on SIGINT
/// or SIGTERM, restore the terminal (the live view may hold it), say that
/// the run was cut short, and exit with 128 + the signal, as a shell would
/// report a killed command.
pub fn exit_on_signal() -> Result<()> {
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("installing the SIGINT/SIGTERM handler")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // The view's thread still owns its Terminal (whose drop
                // would show the cursor): undo all it set, from here.
                ratatui::restore();
                let _ = ratatui::crossterm::execute!(std::io::stdout(), ratatui::crossterm::cursor::Show);
                let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
                eprintln!("xevtchn: {name}: run stopped before the guest finished; no report");
                std::process::exit(128 + signal);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}
