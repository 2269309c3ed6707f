//! Dropping from CPL0 to CPL3, where this host kind runs guest code natively
//! (CPL0 is emulated): the hot loops of every workload run there.

use core::arch::asm;

use super::descriptors::{USER_CS, USER_DS};

const USER_STACK_SIZE: usize = 16 * 1024;
const RFLAGS_IF: u64 = 1 << 9;

#[repr(C, align(16))]
struct Stack([u8; USER_STACK_SIZE]);

static mut USER_STACKS: [Stack; super::descriptors::MAX_VCPUS] =
    [const { Stack([0; USER_STACK_SIZE]) }; super::descriptors::MAX_VCPUS];

/// Continues in `entry(vcpu)` at CPL3 with interrupts enabled; never returns.
pub fn enter(vcpu: usize, entry: extern "C" fn(u64) -> !) -> ! {
    let vcpu = vcpu % super::descriptors::MAX_VCPUS;
    // SAFETY: only this vCPU uses its stack; we take its address, not a reference.
    let top = unsafe { core::ptr::addr_of_mut!(USER_STACKS[vcpu]) } as u64 + USER_STACK_SIZE as u64 - 8;
    // SAFETY: builds an iret frame to the user code segment; the page tables
    // map all memory user-accessible; the TSS's rsp0 was set by
    // descriptors::install, so interrupts taken at CPL3 have a stack.
    unsafe {
        asm!(
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "push {ds}",
            "push {rsp}",
            "push {flags}",
            "push {cs}",
            "push {rip}",
            "iretq",
            ds = in(reg) u64::from(USER_DS),
            rsp = in(reg) top,
            flags = in(reg) RFLAGS_IF | 0x2,
            cs = in(reg) u64::from(USER_CS),
            rip = in(reg) entry as usize as u64,
            in("rdi") vcpu as u64,
            options(noreturn),
        )
    }
}
