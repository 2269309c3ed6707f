//! The hypercall page the VMM writes when the guest writes its address to
//! the hypercall-page MSR.
//!
//! `vmcall` is unusable on this host kind and port I/O faults at CPL3, so
//! the stubs use MMIO (README, "Architecture"):
//! - hypercall `nr` reads 8 bytes at `HYPERCALL_BASE + nr * 8`; the VMM
//!   performs the hypercall with the argument registers and completes the
//!   read with the result, which lands in rax;
//! - EVTCHNOP_send on a port of the table writes the port number to the
//!   port's doorbell (xevtchn_common::doorbell: 4 bytes at DOORBELL_BASE +
//!   port * DOORBELL_STRIDE) with rax already 0. A doorbell completed in
//!   the kernel returns 0; one that exits to the VMM may have rax set to a
//!   Xen errno before the vCPU resumes. Other ports take the general path.
//!
//! Like Xen's own page, the stubs clobber only registers the hypercall ABI
//! lets them (rax, and the argument registers rdi and rsi). One difference
//! from Xen: the send stub reads the port from the guest's struct itself, so
//! EVTCHNOP_send with an unmapped pointer faults in the guest (#PF) instead
//! of returning -EFAULT; every other hypercall gets -EFAULT.

use xevtchn_common::{
    doorbell::{DOORBELL_BASE, DOORBELL_STRIDE, DOORBELL_WIDTH},
    layout::HYPERCALL_BASE,
    two_level::NR_PORTS,
};

pub const PAGE_SIZE: usize = 4096;
/// Each hypercall has a 32-byte slot, as in Xen's page.
const SLOT: usize = 32;
/// Slots hold hypercalls 0..HYPERCALLS; the fast send path lives after them.
const HYPERCALLS: usize = 64;
const FAST_SEND_OFFSET: usize = HYPERCALLS * SLOT;
const EVENT_CHANNEL_OP: usize = 32;
const EVTCHNOP_SEND: u8 = 4;

/// The MMIO address hypercall `nr`'s stub reads.
pub const fn hypercall_address(nr: u64) -> u64 {
    HYPERCALL_BASE + nr * 8
}

/// The stub addresses doorbells as `[rax + rdi * DOORBELL_STRIDE]` and
/// writes `edi` (the port): the SIB scale and the operand size follow.
const SIB_SCALE: u8 = match DOORBELL_STRIDE {
    8 => 3,
    _ => panic!("DOORBELL_STRIDE must be an x86 SIB scale (8 is what the stub encodes)"),
};
const _: () = assert!(DOORBELL_WIDTH == 4, "the stub writes a 32-bit register");

/// The page's bytes. Every port of the 2-level table uses its doorbell.
pub fn build() -> [u8; PAGE_SIZE] {
    build_for(NR_PORTS)
}

/// The page with doorbells for ports below `fast_ports`.
fn build_for(fast_ports: u32) -> [u8; PAGE_SIZE] {
    // int3 everywhere else: a jump into the gaps traps visibly.
    let mut page = [0xcc_u8; PAGE_SIZE];
    for nr in 0..HYPERCALLS {
        page[nr * SLOT..][..14].copy_from_slice(&general_stub(nr as u64));
    }
    // event_channel_op: jmp rel32 to the fast send path.
    let slot = EVENT_CHANNEL_OP * SLOT;
    let rel = (FAST_SEND_OFFSET as i32) - (slot as i32 + 5);
    page[slot] = 0xe9;
    page[slot + 1..slot + 5].copy_from_slice(&rel.to_le_bytes());
    page[slot + 5..slot + 5 + 14].fill(0xcc);
    let fast = fast_send(fast_ports);
    page[FAST_SEND_OFFSET..][..fast.len()].copy_from_slice(&fast);
    page
}

/// `mov rax, imm64; mov rax, [rax]; ret` (14 bytes).
fn general_stub(nr: u64) -> [u8; 14] {
    let mut s = [0u8; 14];
    s[..2].copy_from_slice(&[0x48, 0xb8]);
    s[2..10].copy_from_slice(&hypercall_address(nr).to_le_bytes());
    s[10..].copy_from_slice(&[0x48, 0x8b, 0x00, 0xc3]);
    s
}

/// EVTCHNOP_send to a port below `fast_ports` rings its doorbell; anything
/// else takes the general path of hypercall 32.
fn fast_send(fast_ports: u32) -> Vec<u8> {
    let mut c = Vec::with_capacity(64);
    c.extend([0x83, 0xff, EVTCHNOP_SEND]); //  0: cmp edi, EVTCHNOP_send
    c.extend([0x75, 39 - 5]); //               3: jne general (39)
    c.extend([0x8b, 0x3e]); //                 5: mov edi, [rsi]      ; the port
    c.extend([0x81, 0xff]); //                 7: cmp edi, fast_ports
    c.extend(fast_ports.to_le_bytes());
    c.extend([0x73, 34 - 15]); //             13: jae restore (34)
    c.extend([0x48, 0xb8]); //                15: mov rax, DOORBELL_BASE
    c.extend(DOORBELL_BASE.to_le_bytes());
    c.extend([0x48, 0x8d, 0x34, SIB_SCALE << 6 | 0x38]); // 25: lea rsi, [rax + rdi*8]
    c.extend([0x31, 0xc0]); //                29: xor eax, eax
    c.extend([0x89, 0x3e]); //                31: mov [rsi], edi      ; the doorbell
    c.push(0xc3); //                          33: ret
    c.extend([0xbf, EVTCHNOP_SEND, 0, 0, 0]); // 34: restore: mov edi, EVTCHNOP_send
    c.extend(general_stub(EVENT_CHANNEL_OP as u64)); // 39: general path
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn general_stubs_read_their_own_mmio_address() {
        let page = build();
        for nr in [0usize, 12, 17, 29, 34, 63] {
            let addr = u64::from_le_bytes(page[nr * SLOT + 2..][..8].try_into().unwrap());
            assert_eq!(addr, hypercall_address(nr as u64), "hypercall {nr}");
        }
    }

    #[test]
    fn event_channel_op_jumps_to_the_fast_path_whose_offsets_line_up() {
        let page = build_for(1024);
        let slot = EVENT_CHANNEL_OP * SLOT;
        assert_eq!(page[slot], 0xe9);
        let rel = i32::from_le_bytes(page[slot + 1..slot + 5].try_into().unwrap());
        assert_eq!(slot as i32 + 5 + rel, FAST_SEND_OFFSET as i32);
        let fast = fast_send(1024);
        assert_eq!(fast.len(), 53);
        // jne and jae targets: restore at 34, general at 39.
        assert_eq!(5 + fast[4] as usize, 39);
        assert_eq!(15 + fast[14] as usize, 34);
        assert_eq!(&fast[34..39], &[0xbf, 4, 0, 0, 0]);
        assert_eq!(u32::from_le_bytes(fast[9..13].try_into().unwrap()), 1024);
        assert_eq!(u64::from_le_bytes(fast[41..49].try_into().unwrap()), hypercall_address(32));
        assert_eq!(fast[28], 0xf8, "lea rsi, [rax + rdi*8]: scale 8 is DOORBELL_STRIDE");
    }

    #[test]
    fn every_port_of_the_table_has_its_doorbell() {
        let fast = fast_send(NR_PORTS);
        assert_eq!(u32::from_le_bytes(fast[9..13].try_into().unwrap()), 4096);
        assert_eq!(u64::from_le_bytes(fast[17..25].try_into().unwrap()), DOORBELL_BASE);
    }
}
