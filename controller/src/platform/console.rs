//! Where the guest's console output goes (CONSOLEIO_write). A `--kernel`
//! run copies it out as it is, to the run's output or to stderr when
//! stdout carries the JSON report. The built-in guest has no console: what
//! it writes there (only its fuzzer does) goes to the rate-limited log, so
//! that a guest cannot flood the host's output.

use std::{
    io::Write,
    sync::atomic::{AtomicU8, AtomicU64, Ordering},
};

use super::guest_log::GuestLog;

// 0, the default: the rate-limited log.
const STDERR: u8 = 1;
const STDOUT: u8 = 2;

#[derive(Debug, Default)]
pub struct Console {
    sink: AtomicU8,
    bytes: AtomicU64,
}

impl Console {
    /// Output goes out whole, to stdout (`true`) or stderr.
    pub fn copy_to(&self, stdout: bool) {
        self.sink.store(if stdout { STDOUT } else { STDERR }, Ordering::Relaxed);
    }

    pub fn write(&self, bytes: &[u8], log: &GuestLog) {
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        // A closed output must not stop the guest: the bytes are counted.
        let _ = match self.sink.load(Ordering::Relaxed) {
            STDOUT => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            STDERR => std::io::stderr().lock().write_all(bytes),
            _ => {
                log.warn(|| format!("guest console: {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)])));
                Ok(())
            }
        };
    }

    /// Bytes the guest wrote so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
