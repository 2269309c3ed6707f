//! The hypercall page the VMM writes when the guest writes its address to
//! the hypercall-page MSR.
//!
//! The stubs must work from the guest's own page tables, wherever it mapped
//! the page, and reach the VMM without `vmcall` (unusable on this host
//! kind). Each stub first looks at its privilege level (`mov eax, cs`):
//! - CPL0, where real kernels make hypercalls: `mov eax, nr; out
//!   HYPERCALL_PORT, eax`. Port I/O needs no mapping; the VMM performs
//!   hypercall `nr` with the argument registers and writes the result to
//!   rax before the vCPU resumes. EVTCHNOP_send rings the port's port-I/O
//!   doorbell (xevtchn_common::doorbell: a 4-byte `out` of 0) with rax
//!   already 0, which the in-kernel path completes like an MMIO one.
//! - CPL3: port I/O faults there on PVM, and Xen refuses hypercalls from
//!   an HVM guest's user mode anyway (hvm_hypercall: -EPERM), which is what
//!   the page answers ([`UserMode::Refused`]). The built-in guest, whose hot
//!   loops send from CPL3, maps the VMM's MMIO window and gets
//!   [`UserMode::Window`]:
//!   - hypercall `nr` reads 8 bytes at `HYPERCALL_BASE + nr * 8`, and the
//!     VMM completes the read with the result, which lands in rax;
//!   - EVTCHNOP_send on a port of the table writes the port number to the
//!     port's doorbell (xevtchn_common::doorbell) with rax already 0. A
//!     doorbell completed in the kernel returns 0; one that exits to the
//!     VMM may have rax set to a Xen errno before the vCPU resumes.
//!
//! Like Xen's own page, the stubs clobber only registers the hypercall ABI
//! lets them (rax, and the argument registers rdi and rsi). One difference
//! from Xen: the CPL3 send stub reads the port from the guest's struct
//! itself, so EVTCHNOP_send with an unmapped pointer faults in the guest
//! (#PF) instead of returning -EFAULT; every other hypercall gets -EFAULT.

use xevtchn_common::{
    doorbell::{
        DOORBELL_BASE, DOORBELL_STRIDE, DOORBELL_WIDTH, PIO_DOORBELL_BASE, PIO_DOORBELL_STRIDE, PIO_DOORBELL_VALUE,
    },
    layout::{HYPERCALL_BASE, HYPERCALL_PORT},
    two_level::NR_PORTS,
    xen::errno,
};

pub const PAGE_SIZE: usize = 4096;
/// Each hypercall has a 32-byte slot, as in Xen's page.
const SLOT: usize = 32;
/// Slots hold hypercalls 0..HYPERCALLS; the fast send path lives after them.
const HYPERCALLS: usize = 64;
const FAST_SEND_OFFSET: usize = HYPERCALLS * SLOT;
const EVENT_CHANNEL_OP: usize = 32;
const EVTCHNOP_SEND: u8 = 4;

/// What a hypercall made from CPL3 does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserMode {
    /// -EPERM, as Xen answers an HVM guest's user mode.
    Refused,
    /// Served through the MMIO window at `HYPERCALL_BASE` and the
    /// doorbells, which the guest maps (the built-in guest does).
    Window,
}

/// The MMIO address hypercall `nr`'s CPL3 stub reads.
pub const fn hypercall_address(nr: u64) -> u64 {
    HYPERCALL_BASE + nr * 8
}

/// The CPL3 send stub addresses doorbells as `[rax + rdi * DOORBELL_STRIDE]`
/// and writes `edi` (the port): the SIB scale and the operand size follow.
const SIB_SCALE: u8 = match DOORBELL_STRIDE {
    8 => 3,
    _ => panic!("DOORBELL_STRIDE must be an x86 SIB scale (8 is what the stub encodes)"),
};
const _: () = assert!(DOORBELL_WIDTH == 4, "the stub writes a 32-bit register");
const _: () = assert!(HYPERCALL_PORT <= 0xff, "the stub encodes `out imm8, eax`");
/// SIB of `[rdi * PIO_DOORBELL_STRIDE + disp32]` (no base).
const PIO_SIB: u8 = match PIO_DOORBELL_STRIDE {
    4 => 0b10_111_101,
    _ => panic!("PIO_DOORBELL_STRIDE must be 4 (what the stub encodes)"),
};
const _: () = assert!(PIO_DOORBELL_VALUE == 0, "the stub writes eax = 0");

/// The page's bytes. Every port of the 2-level table uses its doorbell.
pub fn build(user: UserMode) -> [u8; PAGE_SIZE] {
    build_for(user, NR_PORTS)
}

/// The page with CPL3 doorbells for ports below `fast_ports`.
fn build_for(user: UserMode, fast_ports: u32) -> [u8; PAGE_SIZE] {
    // int3 everywhere else: a jump into the gaps traps visibly.
    let mut page = [0xcc_u8; PAGE_SIZE];
    for nr in 0..HYPERCALLS {
        let stub = stub(nr as u32, user);
        page[nr * SLOT..][..stub.len()].copy_from_slice(&stub);
    }
    // event_channel_op: jmp rel32 to the fast send path.
    let slot = EVENT_CHANNEL_OP * SLOT;
    page[slot..slot + SLOT].fill(0xcc);
    let rel = (FAST_SEND_OFFSET as i32) - (slot as i32 + 5);
    page[slot] = 0xe9;
    page[slot + 1..slot + 5].copy_from_slice(&rel.to_le_bytes());
    let fast = fast_send(user, fast_ports);
    page[FAST_SEND_OFFSET..][..fast.len()].copy_from_slice(&fast);
    page
}

/// Hypercall `nr`: CPL0 through the hypercall port, CPL3 as `user` says.
fn stub(nr: u32, user: UserMode) -> Vec<u8> {
    let mut c = Code::default();
    c.bytes(&[0x8c, 0xc8]); //          mov eax, cs
    c.bytes(&[0xa8, 0x03]); //          test al, 3
    c.jump(0x75, "user"); //            jnz user
    c.bytes(&[0xb8]); //                mov eax, nr
    c.bytes(&nr.to_le_bytes());
    c.bytes(&[0xe7, HYPERCALL_PORT as u8, 0xc3]); // out HYPERCALL_PORT, eax; ret
    c.label("user");
    match user {
        UserMode::Refused => {
            c.bytes(&[0x48, 0xc7, 0xc0]); // mov rax, -EPERM (sign-extended)
            c.bytes(&(-errno::EPERM).to_le_bytes());
            c.bytes(&[0xc3]);
        }
        UserMode::Window => {
            c.bytes(&[0x48, 0xb8]); //  mov rax, hypercall_address(nr)
            c.bytes(&hypercall_address(u64::from(nr)).to_le_bytes());
            c.bytes(&[0x48, 0x8b, 0x00, 0xc3]); // mov rax, [rax]; ret
        }
    }
    let code = c.finish();
    assert!(code.len() <= SLOT, "a stub fits its slot");
    code
}

/// EVTCHNOP_send to a port below `fast_ports` rings its doorbell: the
/// port-I/O one at CPL0, the MMIO one at CPL3 when the guest maps the
/// window. Anything else takes the general path of hypercall 32.
fn fast_send(user: UserMode, fast_ports: u32) -> Vec<u8> {
    let mut c = Code::default();
    c.bytes(&[0x83, 0xff, EVTCHNOP_SEND]); // cmp edi, EVTCHNOP_send
    c.jump(0x75, "general"); //              jne general
    c.bytes(&[0x8c, 0xc8, 0xa8, 0x03]); //   mov eax, cs; test al, 3
    c.jump(0x75, "user"); //                 jnz user
    c.bytes(&[0x8b, 0x3e]); //               mov edi, [rsi]      ; the port
    c.bytes(&[0x81, 0xff]); //               cmp edi, fast_ports
    c.bytes(&fast_ports.to_le_bytes());
    c.jump(0x73, "restore"); //              jae restore
    c.bytes(&[0x52]); //                     push rdx
    c.bytes(&[0x8d, 0x14, PIO_SIB]); //      lea edx, [rdi*4 + PIO_DOORBELL_BASE]
    c.bytes(&u32::from(PIO_DOORBELL_BASE).to_le_bytes());
    c.bytes(&[0x31, 0xc0, 0xef]); //         xor eax, eax; out dx, eax (the doorbell)
    c.bytes(&[0x5a, 0xc3]); //               pop rdx; ret
    c.label("user");
    match user {
        UserMode::Refused => c.jump(0xeb, "general"), // jmp general (-EPERM)
        UserMode::Window => {
            c.bytes(&[0x8b, 0x3e]); //       mov edi, [rsi]      ; the port
            c.bytes(&[0x81, 0xff]); //       cmp edi, fast_ports
            c.bytes(&fast_ports.to_le_bytes());
            c.jump(0x73, "restore"); //      jae restore
            c.bytes(&[0x48, 0xb8]); //       mov rax, DOORBELL_BASE
            c.bytes(&DOORBELL_BASE.to_le_bytes());
            c.bytes(&[0x48, 0x8d, 0x34, SIB_SCALE << 6 | 0x38]); // lea rsi, [rax + rdi*8]
            c.bytes(&[0x31, 0xc0]); //       xor eax, eax
            c.bytes(&[0x89, 0x3e, 0xc3]); // mov [rsi], edi ; ret (the doorbell)
        }
    }
    c.label("restore");
    c.bytes(&[0xbf, EVTCHNOP_SEND, 0, 0, 0]); // mov edi, EVTCHNOP_send
    c.label("general");
    c.bytes(&stub(EVENT_CHANNEL_OP as u32, user));
    c.finish()
}

/// Machine code with forward short jumps to named labels.
#[derive(Default)]
struct Code {
    bytes: Vec<u8>,
    /// (offset of the rel8 byte, label)
    fixups: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

impl Code {
    fn bytes(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }

    /// A 2-byte jump with `opcode` (jcc rel8) to `label`.
    fn jump(&mut self, opcode: u8, label: &'static str) {
        self.bytes.extend([opcode, 0]);
        self.fixups.push((self.bytes.len() - 1, label));
    }

    fn label(&mut self, name: &'static str) {
        self.labels.push((name, self.bytes.len()));
    }

    fn finish(mut self) -> Vec<u8> {
        for (at, name) in self.fixups {
            let (_, target) = self.labels.iter().find(|(n, _)| *n == name).expect("jump to a defined label");
            let rel = i8::try_from(*target as isize - (at as isize + 1)).expect("a short jump");
            self.bytes[at] = rel as u8;
        }
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `jcc rel8` at `at` lands.
    fn target(code: &[u8], at: usize) -> usize {
        (at as isize + 2 + code[at + 1] as i8 as isize) as usize
    }

    #[test]
    fn cpl0_stubs_write_their_number_to_the_hypercall_port() {
        for user in [UserMode::Refused, UserMode::Window] {
            let page = build(user);
            for nr in [0usize, 12, 17, 29, 34, 63] {
                let s = &page[nr * SLOT..];
                assert_eq!(&s[..4], &[0x8c, 0xc8, 0xa8, 0x03], "checks CPL first");
                assert_eq!(s[6], 0xb8);
                assert_eq!(u32::from_le_bytes(s[7..11].try_into().unwrap()), nr as u32);
                assert_eq!(&s[11..14], &[0xe7, HYPERCALL_PORT as u8, 0xc3]);
                assert_eq!(target(s, 4), 14, "jnz lands on the CPL3 path");
            }
        }
    }

    #[test]
    fn cpl3_gets_eperm_unless_the_guest_maps_the_window() {
        let page = build(UserMode::Refused);
        let s = &page[17 * SLOT + 14..];
        assert_eq!(&s[..3], &[0x48, 0xc7, 0xc0]);
        assert_eq!(i32::from_le_bytes(s[3..7].try_into().unwrap()), -errno::EPERM);
        let page = build(UserMode::Window);
        let s = &page[17 * SLOT + 14..];
        assert_eq!(u64::from_le_bytes(s[2..10].try_into().unwrap()), hypercall_address(17));
    }

    #[test]
    fn event_channel_op_jumps_to_the_fast_path_whose_offsets_line_up() {
        let page = build_for(UserMode::Window, 1024);
        let slot = EVENT_CHANNEL_OP * SLOT;
        assert_eq!(page[slot], 0xe9);
        let rel = i32::from_le_bytes(page[slot + 1..slot + 5].try_into().unwrap());
        assert_eq!(slot as i32 + 5 + rel, FAST_SEND_OFFSET as i32);
        let fast = fast_send(UserMode::Window, 1024);
        let general = fast.len() - stub(32, UserMode::Window).len();
        assert_eq!(target(&fast, 3), general, "another op: general path");
        let user = target(&fast, 9);
        // CPL0: the port-I/O doorbell.
        assert_eq!(u32::from_le_bytes(fast[15..19].try_into().unwrap()), 1024);
        let restore = target(&fast, 19);
        assert_eq!(&fast[restore..general], &[0xbf, 4, 0, 0, 0], "restore edi");
        assert_eq!(&fast[21..24], &[0x52, 0x8d, 0x14]);
        assert_eq!(fast[24], 0xbd, "lea edx, [rdi*4 + disp32]: scale 4 is PIO_DOORBELL_STRIDE");
        assert_eq!(u32::from_le_bytes(fast[25..29].try_into().unwrap()), 0x8000);
        assert_eq!(&fast[29..user], &[0x31, 0xc0, 0xef, 0x5a, 0xc3], "xor eax, eax; out dx, eax; pop rdx; ret");
        // CPL3: the MMIO doorbell.
        assert_eq!(u64::from_le_bytes(fast[user + 12..user + 20].try_into().unwrap()), DOORBELL_BASE);
        assert_eq!(fast[user + 23], 0xf8, "lea rsi, [rax + rdi*8]: scale 8 is DOORBELL_STRIDE");
        assert_eq!(target(&fast, user + 8), restore);
        assert!(FAST_SEND_OFFSET + fast.len() <= PAGE_SIZE);
    }

    #[test]
    fn without_the_window_cpl3_sends_get_eperm_from_the_general_stub() {
        let fast = fast_send(UserMode::Refused, NR_PORTS);
        let general = fast.len() - stub(32, UserMode::Refused).len();
        let user = target(&fast, 9);
        assert_eq!(fast[user], 0xeb);
        assert_eq!(target(&fast, user), general);
    }

    #[test]
    fn every_port_of_the_table_has_its_doorbell() {
        let fast = fast_send(UserMode::Window, NR_PORTS);
        assert_eq!(u32::from_le_bytes(fast[15..19].try_into().unwrap()), 4096);
    }
}
