//! HYPERVISOR_memory_op: XENMEM_add_to_physmap of the shared_info page,
//! which is all an HVM guest needs for event channels, and
//! XENMEM_memory_map. Follows xen/common/memory.c (do_memory_op,
//! xenmem_add_to_physmap), xen/arch/x86/mm/p2m.c
//! (xenmem_add_to_physmap_one) and xen/arch/x86/mm.c (arch_memory_op).

use thiserror::Error;
use xevtchn_common::xen::errno;
use xevtchn_common::xen::memory::*;

use super::actions::Action;
use super::error::{DomainIds, DomainLookupError, XenErrno};
use super::guest_memory::{GuestFault, GuestMemory, read_obj};

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum MemoryError {
    #[error("memory op {0} is not implemented")]
    UnknownOp(u64),
    #[error("start extent {0} does not fit add_to_physmap's 16-bit size")]
    BadStartExtent(u64),
    #[error("map space {0} is not implemented")]
    SpaceNotImplemented(u32),
    #[error("map space {0} does not exist")]
    NoSuchSpace(u32),
    #[error("shared_info has only index 0, not {0}")]
    BadSharedInfoIndex(u64),
    #[error("INVALID_GFN, or a frame beyond the 40-bit guest-physical space, is not a destination")]
    InvalidGfn,
    #[error(transparent)]
    Domain(#[from] DomainLookupError),
    #[error(transparent)]
    Fault(#[from] GuestFault),
}

impl XenErrno for MemoryError {
    fn errno(&self) -> i32 {
        match self {
            Self::UnknownOp(_) | Self::SpaceNotImplemented(_) => errno::ENOSYS,
            Self::BadStartExtent(_) => errno::EDOM,
            Self::NoSuchSpace(_) | Self::BadSharedInfoIndex(_) | Self::InvalidGfn => errno::EINVAL,
            Self::Domain(e) => e.errno(),
            Self::Fault(_) => errno::EFAULT,
        }
    }
}

/// The highest guest frame a page can be added at (40-bit guest-physical).
pub const MAX_GFN: u64 = (1 << (40 - 12)) - 1;

/// XENMEM_add_to_physmap. For XENMAPSPACE_shared_info (idx 0) records the
/// guest frame and emits `SharedInfoPlaced`; the VMM maps the page there.
/// A later call moves it, as on Xen. Returns the GFN.
pub fn add_to_physmap(
    ids: &DomainIds,
    xatp: &XenAddToPhysmap,
    shared_info_gfn: &mut Option<u64>,
    out: &mut Vec<Action>,
) -> Result<u64, MemoryError> {
    // "Foreign mapping is only possible via add_to_physmap_batch."
    if xatp.space == XENMAPSPACE_gmfn_foreign {
        return Err(MemoryError::SpaceNotImplemented(xatp.space));
    }
    ids.require_self(xatp.domid)?;
    // Xen's p2m refuses frames beyond the guest's physical address width;
    // 40 bits (1 TiB) also keeps `gfn << 12` from overflowing.
    if xatp.gpfn == INVALID_GFN || xatp.gpfn > MAX_GFN {
        return Err(MemoryError::InvalidGfn);
    }
    match xatp.space {
        XENMAPSPACE_shared_info if xatp.idx == 0 => {
            *shared_info_gfn = Some(xatp.gpfn);
            out.push(Action::SharedInfoPlaced { gfn: xatp.gpfn });
            Ok(xatp.gpfn)
        }
        XENMAPSPACE_shared_info => Err(MemoryError::BadSharedInfoIndex(xatp.idx)),
        XENMAPSPACE_grant_table | XENMAPSPACE_gmfn | XENMAPSPACE_gmfn_range => {
            Err(MemoryError::SpaceNotImplemented(xatp.space))
        }
        // xenmem_add_to_physmap_one leaves mfn INVALID → -EINVAL.
        other => Err(MemoryError::NoSuchSpace(other)),
    }
}

/// One entry of the domain's memory map, as XENMEM_memory_map returns it:
/// Xen's `struct e820entry` (packed: addr, size, type; 20 bytes). The
/// types are the E820 ones, which hvm_start_info's memmap uses too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

impl E820Entry {
    pub const RAM: u32 = 1;
    pub const RESERVED: u32 = 2;
    pub const SIZE: usize = 20;

    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..].copy_from_slice(&self.kind.to_le_bytes());
        b
    }
}

/// XENMEM_memory_map (arch_memory_op): `struct xen_memory_map { unsigned
/// int nr_entries; XEN_GUEST_HANDLE(void) buffer; }` gets at most
/// `nr_entries` entries copied to `buffer` and `nr_entries` set to the
/// number copied. A domain without a map answers -ENOSYS ("backwards
/// compatibility"), as Xen does.
fn memory_map<M: GuestMemory + ?Sized>(map: &[E820Entry], arg: u64, mem: &M) -> Result<i64, MemoryError> {
    let mut header = [0u8; 16];
    mem.read(arg, &mut header)?;
    if map.is_empty() {
        return Err(MemoryError::UnknownOp(XENMEM_memory_map));
    }
    let asked = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let buffer = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
    let n = map.len().min(asked as usize);
    let bytes: Vec<u8> = map[..n].iter().flat_map(|e| e.to_bytes()).collect();
    mem.write(buffer, &bytes)?;
    mem.write(arg, &(n as u32).to_le_bytes())?;
    Ok(0)
}

/// HYPERVISOR_memory_op(cmd, arg): the op is `cmd & MEMOP_CMD_MASK`, the
/// rest a continuation's start extent.
pub fn memory_op<M: GuestMemory + ?Sized>(
    ids: &DomainIds,
    cmd: u64,
    arg: u64,
    mem: &M,
    shared_info_gfn: &mut Option<u64>,
    map: &[E820Entry],
    out: &mut Vec<Action>,
) -> Result<i64, MemoryError> {
    let op = cmd & MEMOP_CMD_MASK;
    let start_extent = cmd >> MEMOP_EXTENT_SHIFT;
    match op {
        XENMEM_add_to_physmap => {
            if start_extent > u64::from(u16::MAX) {
                return Err(MemoryError::BadStartExtent(start_extent));
            }
            let xatp: XenAddToPhysmap = read_obj(mem, arg)?;
            add_to_physmap(ids, &xatp, shared_info_gfn, out)?;
            Ok(0)
        }
        XENMEM_memory_map => memory_map(map, arg, mem),
        other => Err(MemoryError::UnknownOp(other)),
    }
}

#[cfg(test)]
mod tests {
    use xevtchn_common::xen::errno::{EDOM, EFAULT, EINVAL, ENOSYS, EPERM, ESRCH};
    use xevtchn_common::xen::hypercall::DOMID_SELF;

    use super::*;
    use crate::test_support::TestMemory;

    const IDS: DomainIds = DomainIds { domid: 1, backend_domid: 0 };

    fn xatp(space: u32, idx: u64, gpfn: u64) -> XenAddToPhysmap {
        XenAddToPhysmap { domid: DOMID_SELF, size: 0, space, idx, gpfn }
    }

    fn errno_of(x: &XenAddToPhysmap) -> i32 {
        add_to_physmap(&IDS, x, &mut None, &mut Vec::new()).unwrap_err().errno()
    }

    #[test]
    fn memory_map_copies_at_most_the_entries_asked_for() {
        let map = [
            E820Entry { addr: 0, size: 64 << 20, kind: E820Entry::RAM },
            E820Entry { addr: 0xd000_0000, size: 0x2_0000, kind: E820Entry::RESERVED },
        ];
        let mem = TestMemory::new(0x1000, 0x1000);
        let call = |asked: u32| {
            let mut header = [0u8; 16];
            header[..4].copy_from_slice(&asked.to_le_bytes());
            header[8..].copy_from_slice(&0x1100u64.to_le_bytes());
            mem.write(0x1000, &header).unwrap();
            let ret = memory_op(&IDS, XENMEM_memory_map, 0x1000, &mem, &mut None, &map, &mut Vec::new());
            let mut n = [0u8; 4];
            mem.read(0x1000, &mut n).unwrap();
            (ret.map_err(|e| e.errno()), u32::from_le_bytes(n))
        };
        assert_eq!(call(16), (Ok(0), 2));
        let mut entry = [0u8; 20];
        mem.read(0x1100 + 20, &mut entry).unwrap();
        assert_eq!(entry, map[1].to_bytes());
        assert_eq!(call(1), (Ok(0), 1), "truncated to the buffer");
        let none = memory_op(&IDS, XENMEM_memory_map, 0x1000, &mem, &mut None, &[], &mut Vec::new());
        assert_eq!(none.unwrap_err().errno(), ENOSYS, "no map: backwards compatibility");
        let fault = memory_op(&IDS, XENMEM_memory_map, 0x5000, &mem, &mut None, &map, &mut Vec::new());
        assert_eq!(fault.unwrap_err().errno(), EFAULT);
    }

    #[test]
    fn shared_info_is_placed_and_can_move() {
        let mut gfn = None;
        let mut out = Vec::new();
        add_to_physmap(&IDS, &xatp(XENMAPSPACE_shared_info, 0, 0xfeffe), &mut gfn, &mut out).unwrap();
        add_to_physmap(&IDS, &xatp(XENMAPSPACE_shared_info, 0, 0x1000), &mut gfn, &mut out).unwrap();
        assert_eq!(gfn, Some(0x1000));
        assert_eq!(out, [Action::SharedInfoPlaced { gfn: 0xfeffe }, Action::SharedInfoPlaced { gfn: 0x1000 }]);
    }

    #[test]
    fn shared_info_index_must_be_0() {
        // xenmem_add_to_physmap_one: `if ( idx == 0 ) mfn = ...` else -EINVAL.
        assert_eq!(errno_of(&xatp(XENMAPSPACE_shared_info, 1, 0x1000)), EINVAL);
    }

    #[test]
    fn invalid_gfn_is_einval() {
        assert_eq!(errno_of(&xatp(XENMAPSPACE_shared_info, 0, INVALID_GFN)), EINVAL);
    }

    #[test]
    fn other_spaces_are_enosys_or_einval() {
        assert_eq!(errno_of(&xatp(XENMAPSPACE_gmfn_foreign, 0, 1)), ENOSYS);
        assert_eq!(errno_of(&xatp(XENMAPSPACE_grant_table, 0, 1)), ENOSYS);
        assert_eq!(errno_of(&xatp(XENMAPSPACE_dev_mmio, 0, 1)), EINVAL);
        assert_eq!(errno_of(&xatp(99, 0, 1)), EINVAL);
    }

    #[test]
    fn another_domain_is_esrch_or_eperm() {
        let mut x = xatp(XENMAPSPACE_shared_info, 0, 1);
        x.domid = 3;
        assert_eq!(errno_of(&x), ESRCH);
        x.domid = 0;
        assert_eq!(errno_of(&x), EPERM);
    }

    #[test]
    fn memory_op_reads_the_argument_from_guest_memory() {
        let mem = TestMemory::new(0x4000, 0x1000);
        mem.put(0x4010, &xatp(XENMAPSPACE_shared_info, 0, 0xabc));
        let mut gfn = None;
        let mut out = Vec::new();
        assert_eq!(memory_op(&IDS, XENMEM_add_to_physmap, 0x4010, &mem, &mut gfn, &[], &mut out), Ok(0));
        assert_eq!(gfn, Some(0xabc));
    }

    #[test]
    fn memory_op_errors() {
        let mem = TestMemory::new(0x4000, 0x1000);
        let mut gfn = None;
        let mut out = Vec::new();
        let mut op = |cmd, arg| memory_op(&IDS, cmd, arg, &mem, &mut gfn, &[], &mut out).unwrap_err().errno();
        assert_eq!(op(XENMEM_add_to_physmap, 0x9000), EFAULT);
        assert_eq!(op(XENMEM_populate_physmap, 0x4000), ENOSYS);
        assert_eq!(op(XENMEM_add_to_physmap | (0x1_0000 << MEMOP_EXTENT_SHIFT), 0x4000), EDOM);
    }

    #[test]
    fn a_frame_beyond_the_physical_address_width_is_einval() {
        let ids = DomainIds { domid: 1, backend_domid: 0 };
        let mut gfn = None;
        let mut out = Vec::new();
        let beyond = xatp(XENMAPSPACE_shared_info, 0, MAX_GFN + 1);
        let err = add_to_physmap(&ids, &beyond, &mut gfn, &mut out).unwrap_err();
        assert_eq!(err.errno(), errno::EINVAL);
        assert!(gfn.is_none() && out.is_empty());
        assert!(add_to_physmap(&ids, &xatp(XENMAPSPACE_shared_info, 0, MAX_GFN), &mut gfn, &mut out).is_ok());
    }
}
