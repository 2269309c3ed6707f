//! Where the guest's console output goes (CONSOLEIO_write): the run's
//! output, or stderr when stdout carries the JSON report.

use std::{
    io::Write,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

#[derive(Debug, Default)]
pub struct Console {
    to_stdout: AtomicBool,
    bytes: AtomicU64,
}

impl Console {
    /// Output goes to stdout from now on (default: stderr).
    pub fn use_stdout(&self) {
        self.to_stdout.store(true, Ordering::Relaxed);
    }

    /// Copies the guest's bytes out as they are (a console is a byte stream).
    pub fn write(&self, bytes: &[u8]) {
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        // A closed output must not stop the guest: the bytes are counted.
        let _ = if self.to_stdout.load(Ordering::Relaxed) {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        } else {
            std::io::stderr().lock().write_all(bytes)
        };
    }

    /// Bytes the guest wrote so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
