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

/// For `run`: the first SIGINT or SIGTERM asks the guest to stop (it stops
/// sending, checks that every event arrived and writes its report, which
/// `run` prints as usual); a second one restores the terminal (the live
/// view may hold it) and exits at once with 128 + the signal, as a shell
/// reports a killed command, with no report.
pub fn stop_run_on_signal() -> Result<()> {
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).context("installing the SIGINT/SIGTERM handler")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals.forever();
            if let Some(signal) = signals.next() {
                let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
                crate::run::stop::request(name);
                eprintln!("xevtchn: {name}: stopping the guest, which writes its report (again to quit at once)");
            }
            if let Some(signal) = signals.next() {
                // The view's thread still owns its Terminal (whose drop
                // would show the cursor): undo all it set, from here. Not
                // into a pipe, where the escapes would corrupt the output.
                if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                    ratatui::restore();
                    let _ = ratatui::crossterm::execute!(std::io::stdout(), ratatui::crossterm::cursor::Show);
                }
                let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
                eprintln!("xevtchn: {name} again: run stopped before the guest finished; no report");
                std::process::exit(128 + signal);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}
