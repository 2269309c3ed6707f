//! The Xen PV console's backend (xen/include/public/io/console.h), what
//! xenconsoled is to a Xen guest: HVM_PARAM_CONSOLE_PFN names a ring page
//! and HVM_PARAM_CONSOLE_EVTCHN an interdomain port connected to this
//! backend, a host task woken by the port. It copies what the guest puts
//! in the `out` ring to the run's console and passes the run's stdin to
//! the `in` ring, notifying the guest through the port either way.

use std::{
    io::Read,
    sync::{Arc, Mutex, atomic::Ordering},
};

use anyhow::{Context, Result};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use xevtchn_common::xen::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};

use crate::{
    platform::{XenPlatform, eventfd_task},
    vmm::memory::GuestRam,
};

/// `struct xencons_interface`: in[1024], out[2048], then the indexes.
const IN: u64 = 0;
const IN_SIZE: u32 = 1024;
const OUT: u64 = 1024;
const OUT_SIZE: u32 = 2048;
const IN_CONS: u64 = 3072;
const IN_PROD: u64 = 3076;
const OUT_CONS: u64 = 3080;
const OUT_PROD: u64 = 3084;

pub struct PvConsole {
    /// The guest's end of the console channel (HVM_PARAM_CONSOLE_EVTCHN).
    pub guest_port: u32,
    task: tokio::task::JoinHandle<()>,
}

/// The ring page and the backend's end of the channel.
struct Ring {
    ram: GuestRam,
    page: u64,
    platform: Arc<XenPlatform>,
    backend_port: u32,
}

impl PvConsole {
    /// Connects a console channel, publishes it and the ring page at `page`
    /// (a reserved page of guest RAM) in the HVM params, and serves it.
    /// With `input`, the run's stdin is the guest's console input.
    pub fn start(
        platform: Arc<XenPlatform>,
        ram: GuestRam,
        page: u64,
        input: bool,
        tasks: &tokio::runtime::Handle,
    ) -> Result<Self> {
        let eventfd = Arc::new(EventFd::new(EFD_NONBLOCK).context("creating the console's eventfd")?);
        let (guest_port, backend_port) =
            platform.connect_backend(eventfd.clone()).context("connecting the PV console's channel")?;
        platform.set_hvm_param(HVM_PARAM_CONSOLE_PFN, page >> 12).context("setting HVM_PARAM_CONSOLE_PFN")?;
        platform.set_hvm_param(HVM_PARAM_CONSOLE_EVTCHN, u64::from(guest_port)).context("HVM_PARAM_CONSOLE_EVTCHN")?;
        ram.write_slice(&[0u8; 4096], GuestAddress(page)).context("clearing the console ring")?;
        let ring = Arc::new(Mutex::new(Ring { ram, page, platform, backend_port }));
        if input {
            let ring = ring.clone();
            std::thread::Builder::new().name("pv-console-in".into()).spawn(move || feed_stdin(&ring))?;
        }
        let task = eventfd_task::watch(tasks, eventfd, move || {
            let ring = ring.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = ring.drain() {
                log::warn!("PV console: {e:#}");
            }
        })?;
        Ok(Self { guest_port, task })
    }
}

impl Drop for PvConsole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Ring {
    fn index(&self, offset: u64) -> Result<u32> {
        Ok(self.ram.load::<u32>(GuestAddress(self.page + offset), Ordering::Acquire)?)
    }

    fn set_index(&self, offset: u64, value: u32) -> Result<()> {
        Ok(self.ram.store(value, GuestAddress(self.page + offset), Ordering::Release)?)
    }

    /// Copies out what the guest wrote, frees the ring and tells it so.
    fn drain(&self) -> Result<()> {
        let (cons, prod) = (self.index(OUT_CONS)?, self.index(OUT_PROD)?);
        // A guest that moves prod beyond a full ring is taken at its word
        // for at most one ring's worth.
        let len = prod.wrapping_sub(cons).min(OUT_SIZE);
        if len == 0 {
            return Ok(());
        }
        let mut bytes = vec![0u8; len as usize];
        for (i, b) in bytes.iter_mut().enumerate() {
            let at = OUT + u64::from(cons.wrapping_add(i as u32) % OUT_SIZE);
            *b = self.ram.read_obj(GuestAddress(self.page + at))?;
        }
        self.platform.console_write(&bytes);
        self.set_index(OUT_CONS, cons.wrapping_add(len))?;
        self.platform.backend_send(self.backend_port)?;
        Ok(())
    }

    /// Puts as much of `bytes` in the `in` ring as fits; how much did.
    fn feed(&self, bytes: &[u8]) -> Result<usize> {
        let (cons, prod) = (self.index(IN_CONS)?, self.index(IN_PROD)?);
        let room = IN_SIZE.saturating_sub(prod.wrapping_sub(cons)) as usize;
        let n = room.min(bytes.len());
        for (i, b) in bytes[..n].iter().enumerate() {
            let at = IN + u64::from(prod.wrapping_add(i as u32) % IN_SIZE);
            self.ram.write_obj(*b, GuestAddress(self.page + at))?;
        }
        if n > 0 {
            self.set_index(IN_PROD, prod.wrapping_add(n as u32))?;
            self.platform.backend_send(self.backend_port)?;
        }
        Ok(n)
    }
}

/// Passes stdin to the guest until it ends (a full ring waits for the
/// guest to read: it is polled every 10 ms).
fn feed_stdin(ring: &Mutex<Ring>) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 256];
    while let Ok(n) = stdin.read(&mut buf) {
        if n == 0 {
            return;
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let fed = ring.lock().unwrap_or_else(|p| p.into_inner()).feed(rest);
            match fed {
                Ok(fed) => rest = &rest[fed..],
                Err(e) => {
                    log::warn!("PV console input: {e:#}");
                    return;
                }
            }
            if !rest.is_empty() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}
