//! HYPERVISOR_memory_op: only XENMEM_add_to_physmap of the shared_info
//! page, which is all an HVM guest needs for event channels. Follows
//! xen/common/memory.c (do_memory_op, xenmem_add_to_physmap) and
//! xen/arch/x86/mm/p2m.c (xenmem_add_to_physmap_one).

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

/// HYPERVISOR_memory_op(cmd, arg): the op is `cmd & MEMOP_CMD_MASK`, the
/// rest a continuation's start extent.
pub fn memory_op<M: GuestMemory + ?Sized>(
    ids: &DomainIds,
    cmd: u64,
    arg: u64,
    mem: &M,
    shared_info_gfn: &mut Option<u64>,
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
        assert_eq!(memory_op(&IDS, XENMEM_add_to_physmap, 0x4010, &mem, &mut gfn, &mut out), Ok(0));
        assert_eq!(gfn, Some(0xabc));
    }

    #[test]
    fn memory_op_errors() {
        let mem = TestMemory::new(0x4000, 0x1000);
        let mut gfn = None;
        let mut out = Vec::new();
        let mut op = |cmd, arg| memory_op(&IDS, cmd, arg, &mem, &mut gfn, &mut out).unwrap_err().errno();
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
