//! Byte views of the mirrored Xen structs, for copying them to and from
//! guest memory without a serialisation layer.

use core::mem::size_of;

/// A mirrored Xen struct that is plain bytes.
///
/// Hypercall arguments arrive as guest memory; the VMM copies them into
/// these structs and back. Because every mirrored struct spells out its
/// padding, viewing one as bytes never reads uninitialised memory, and any
/// byte pattern read from the guest is a valid value.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs whose fields are integers, arrays
/// of integers or other `XenAbi` structs, with no implicit padding (every
/// padding byte is an explicit field). The size assertions that follow each
/// struct check this against the C header.
pub unsafe trait XenAbi: Copy + 'static {
    /// All-zero value (what Xen's `memset(0)` gives).
    #[inline(always)]
    fn zeroed() -> Self {
        // SAFETY: the implementor guarantees that Self is made of integers
        // only, for which the all-zero bit pattern is valid.
        unsafe { core::mem::zeroed() }
    }

    /// The struct's bytes, as the guest sees them.
    #[inline(always)]
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Self has no implicit padding (trait contract), so all
        // size_of::<Self>() bytes behind the reference are initialised, and
        // the slice borrows `self` for its lifetime.
        unsafe { core::slice::from_raw_parts((self as *const Self).cast::<u8>(), size_of::<Self>()) }
    }

    /// Reads a value from exactly `size_of::<Self>()` bytes; `None` for any
    /// other length.
    #[inline(always)]
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != size_of::<Self>() {
            return None;
        }
        // SAFETY: the length was checked just above, read_unaligned copes
        // with any alignment, and every bit pattern is a valid Self (trait
        // contract).
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

/// Implements [`XenAbi`] for structs that follow its contract.
macro_rules! impl_xen_abi {
    ($($ty:ty),+ $(,)?) => {
        $(
            // SAFETY: $ty is #[repr(C)], made only of integers (or arrays of
            // them, or other XenAbi structs) with explicit padding fields;
            // the const assertions after its definition check its size and
            // offsets against the Xen header.
            unsafe impl $crate::xen::abi::XenAbi for $ty {}
        )+
    };
}
pub(crate) use impl_xen_abi;

#[cfg(test)]
mod tests {
    use super::XenAbi;
    use crate::xen::evtchn::EvtchnStatus;
    use crate::xen::shared_info::SharedInfo;

    #[test]
    fn bytes_round_trip_in_guest_order() {
        let mut status = EvtchnStatus { dom: 0x7ff0, port: 7, status: 2, vcpu: 1, ..EvtchnStatus::zeroed() };
        status.set_interdomain(3, 9);
        let bytes = status.as_bytes();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..8], &[0xf0, 0x7f, 0, 0, 7, 0, 0, 0]);
        // u.interdomain.dom at 16, u.interdomain.port at 20.
        assert_eq!(&bytes[16..24], &[3, 0, 0, 0, 9, 0, 0, 0]);
        assert_eq!(EvtchnStatus::from_bytes(bytes), Some(status));
    }

    #[test]
    fn from_bytes_rejects_a_wrong_length() {
        assert_eq!(EvtchnStatus::from_bytes(&[0; 23]), None);
        assert_eq!(EvtchnStatus::from_bytes(&[0; 25]), None);
    }

    #[test]
    fn zeroed_is_all_zero_bytes() {
        assert!(SharedInfo::zeroed().as_bytes().iter().all(|&b| b == 0));
    }
}
