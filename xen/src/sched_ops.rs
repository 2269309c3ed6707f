//! HYPERVISOR_sched_op and HYPERVISOR_console_io: the calls a guest makes
//! to wait, to stop and to print. Validation follows Xen
//! (xen/common/sched/core.c: do_sched_op, do_poll;
//! xen/drivers/char/console.c: do_console_io); what only the VMM can do
//! (stop the VM, block the vCPU, write the console) comes back as a
//! [`FollowUp`].

use thiserror::Error;
use xevtchn_common::two_level::{EventWords, NR_PORTS, is_pending};
use xevtchn_common::xen::errno;
use xevtchn_common::xen::sched::*;

use super::error::XenErrno;
use super::guest_memory::{GuestFault, GuestMemory, read_obj};

/// What the VMM does after a hypercall that returned to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FollowUp {
    /// SCHEDOP_shutdown: the domain shut down with this reason (SHUTDOWN_*).
    Shutdown { reason: u32 },
    /// SCHEDOP_block: the vCPU waits until its upcall is pending.
    Block,
    /// SCHEDOP_poll: the vCPU waits until one of `ports` is pending or the
    /// system time reaches `timeout_ns` (0: no timeout).
    Poll { ports: Vec<u32>, timeout_ns: u64 },
    /// CONSOLEIO_write: bytes for the console.
    Console(Vec<u8>),
    /// set_timer_op / VCPUOP_*_singleshot_timer: `vcpu`'s singleshot timer
    /// fires (sends its VIRQ_TIMER) at system time `deadline_ns`, or is
    /// stopped (None).
    Timer { vcpu: u32, deadline_ns: Option<u64> },
}

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum SchedError {
    #[error("sched_op command {0} is not implemented")]
    UnknownOp(u64),
    #[error("SCHEDOP_poll of {0} ports (at most {SCHED_POLL_MAX_PORTS})")]
    TooManyPorts(u32),
    #[error("SCHEDOP_poll of port {0}, beyond the domain's ports")]
    BadPort(u32),
    #[error("console_io command {0} is not implemented")]
    UnknownConsoleOp(u64),
    #[error("CONSOLEIO_read of {0} bytes (negative as an int)")]
    ReadTooBig(u32),
    #[error(transparent)]
    Fault(#[from] GuestFault),
}

impl XenErrno for SchedError {
    fn errno(&self) -> i32 {
        match self {
            Self::UnknownOp(_) | Self::UnknownConsoleOp(_) => errno::ENOSYS,
            Self::TooManyPorts(_) | Self::BadPort(_) => errno::EINVAL,
            Self::ReadTooBig(_) => errno::E2BIG,
            Self::Fault(_) => errno::EFAULT,
        }
    }
}

/// HYPERVISOR_sched_op(cmd, arg) (do_sched_op). SCHEDOP_shutdown_code
/// records nothing here (only a later SCHEDOP_shutdown ends the run);
/// remote_shutdown, watchdog and pin_override are -ENOSYS.
pub fn sched_op<M, W>(cmd: u64, arg: u64, mem: &M, words: &W) -> Result<(i64, Option<FollowUp>), SchedError>
where
    M: GuestMemory + ?Sized,
    W: EventWords + ?Sized,
{
    match cmd {
        SCHEDOP_yield => Ok((0, None)),
        // vcpu_block_enable_events: for an HVM guest the upcall mask is not
        // consulted (see two_level), so blocking waits for the upcall.
        SCHEDOP_block => Ok((0, Some(FollowUp::Block))),
        SCHEDOP_shutdown => {
            let shutdown: SchedShutdown = read_obj(mem, arg)?;
            // domain_shutdown takes the reason as a u8.
            Ok((0, Some(FollowUp::Shutdown { reason: shutdown.reason & 0xff })))
        }
        SCHEDOP_shutdown_code => {
            let _: SchedShutdown = read_obj(mem, arg)?;
            Ok((0, None))
        }
        SCHEDOP_poll => {
            let poll: SchedPoll = read_obj(mem, arg)?;
            do_poll(&poll, mem, words).map(|follow_up| (0, follow_up))
        }
        other => Err(SchedError::UnknownOp(other)),
    }
}

/// do_poll: at most 128 ports, each below the domain's port count (Xen:
/// its valid ports; here every 2-level port counts as valid); if one is
/// already pending it returns at once, else the vCPU waits.
fn do_poll<M, W>(poll: &SchedPoll, mem: &M, words: &W) -> Result<Option<FollowUp>, SchedError>
where
    M: GuestMemory + ?Sized,
    W: EventWords + ?Sized,
{
    if poll.nr_ports > SCHED_POLL_MAX_PORTS {
        return Err(SchedError::TooManyPorts(poll.nr_ports));
    }
    let mut bytes = vec![0u8; poll.nr_ports as usize * 4];
    mem.read(poll.ports, &mut bytes)?;
    let ports: Vec<u32> = bytes.as_chunks::<4>().0.iter().map(|b| u32::from_le_bytes(*b)).collect();
    for &port in &ports {
        if port >= NR_PORTS {
            return Err(SchedError::BadPort(port));
        }
        if is_pending(words, port) {
            return Ok(None);
        }
    }
    Ok(Some(FollowUp::Poll { ports, timeout_ns: poll.timeout }))
}

/// The most CONSOLEIO_write passes on per call; Xen writes longer buffers
/// in pieces with continuations, here the rest is read (so a bad pointer
/// is still -EFAULT) and dropped.
pub const CONSOLE_WRITE_MAX: u32 = 64 << 10;

/// HYPERVISOR_console_io(cmd, count, buffer) (do_console_io). A domU may
/// write, as with Xen's `guest_loglvl` console on debug builds (release
/// Xen answers -EPERM unless the domain is the console domain). There is
/// no input here: CONSOLEIO_read reads 0 bytes.
pub fn console_io<M: GuestMemory + ?Sized>(
    cmd: u64,
    count: u64,
    buffer: u64,
    mem: &M,
) -> Result<(i64, Option<FollowUp>), SchedError> {
    // `unsigned int count` in Xen.
    let count = count as u32;
    match cmd {
        CONSOLEIO_write => {
            let mut bytes = vec![0u8; count.min(CONSOLE_WRITE_MAX) as usize];
            mem.read(buffer, &mut bytes)?;
            let mut rest = [0u8; 4096];
            let mut at = u64::from(CONSOLE_WRITE_MAX);
            while at < u64::from(count) {
                let n = (u64::from(count) - at).min(rest.len() as u64) as usize;
                mem.read(buffer + at, &mut rest[..n])?;
                at += n as u64;
            }
            Ok((0, Some(FollowUp::Console(bytes))))
        }
        CONSOLEIO_read if (count as i32) < 0 => Err(SchedError::ReadTooBig(count)),
        CONSOLEIO_read => Ok((0, None)),
        other => Err(SchedError::UnknownConsoleOp(other)),
    }
}

#[cfg(test)]
mod tests {
    use xevtchn_common::two_level::{AtomicPage, set_pending};
    use xevtchn_common::xen::errno::{E2BIG, EFAULT, EINVAL, ENOSYS};

    use super::*;
    use crate::test_support::TestMemory;

    fn poll(mem: &TestMemory, words: &AtomicPage, ports: &[u32], timeout: u64) -> Result<Option<FollowUp>, i32> {
        let bytes: Vec<u8> = ports.iter().flat_map(|p| p.to_le_bytes()).collect();
        mem.write(0x1100, &bytes).unwrap();
        let arg = SchedPoll { ports: 0x1100, nr_ports: ports.len() as u32, _pad: 0, timeout };
        mem.put(0x1000, &arg);
        sched_op(SCHEDOP_poll, 0x1000, mem, words)
            .map(|(ret, f)| {
                assert_eq!(ret, 0);
                f
            })
            .map_err(|e| e.errno())
    }

    #[test]
    fn poll_waits_unless_a_port_is_pending_and_checks_like_do_poll() {
        let mem = TestMemory::new(0x1000, 0x1000);
        let words = AtomicPage::new();
        assert_eq!(poll(&mem, &words, &[3, 9], 500), Ok(Some(FollowUp::Poll { ports: vec![3, 9], timeout_ns: 500 })));
        set_pending(&words, 9, 0);
        assert_eq!(poll(&mem, &words, &[3, 9], 500), Ok(None), "9 is pending: at once");
        assert_eq!(poll(&mem, &words, &[4096], 0), Err(EINVAL));
        assert_eq!(poll(&mem, &words, &vec![1; 129], 0), Err(EINVAL));
        assert_eq!(poll(&mem, &words, &vec![1; 128], 0).map(|f| f.is_some()), Ok(true));
        let far = SchedPoll { ports: 0x9000, nr_ports: 1, _pad: 0, timeout: 0 };
        mem.put(0x1000, &far);
        assert_eq!(sched_op(SCHEDOP_poll, 0x1000, &mem, &words).unwrap_err().errno(), EFAULT);
    }

    #[test]
    fn shutdown_reports_its_reason_and_other_ops_answer_like_xen() {
        let mem = TestMemory::new(0x1000, 0x100);
        let words = AtomicPage::new();
        mem.put(0x1000, &SchedShutdown { reason: SHUTDOWN_crash });
        assert_eq!(
            sched_op(SCHEDOP_shutdown, 0x1000, &mem, &words),
            Ok((0, Some(FollowUp::Shutdown { reason: SHUTDOWN_crash })))
        );
        assert_eq!(sched_op(SCHEDOP_shutdown, 0x5000, &mem, &words).unwrap_err().errno(), EFAULT);
        assert_eq!(sched_op(SCHEDOP_yield, 0, &mem, &words), Ok((0, None)));
        assert_eq!(sched_op(SCHEDOP_block, 0, &mem, &words), Ok((0, Some(FollowUp::Block))));
        assert_eq!(sched_op(SCHEDOP_watchdog, 0, &mem, &words).unwrap_err().errno(), ENOSYS);
        assert_eq!(sched_op(99, 0, &mem, &words).unwrap_err().errno(), ENOSYS);
    }

    #[test]
    fn console_writes_pass_the_bytes_on_and_reads_get_none() {
        let mem = TestMemory::new(0x1000, 0x100);
        mem.write(0x1010, b"hello\n").unwrap();
        assert_eq!(console_io(CONSOLEIO_write, 6, 0x1010, &mem), Ok((0, Some(FollowUp::Console(b"hello\n".to_vec())))));
        assert_eq!(console_io(CONSOLEIO_write, 6, 0x5000, &mem).unwrap_err().errno(), EFAULT);
        assert_eq!(console_io(CONSOLEIO_read, 16, 0x1010, &mem), Ok((0, None)));
        assert_eq!(console_io(CONSOLEIO_read, 0x8000_0000, 0x1010, &mem).unwrap_err().errno(), E2BIG);
        assert_eq!(console_io(7, 0, 0, &mem).unwrap_err().errno(), ENOSYS);
    }
}
