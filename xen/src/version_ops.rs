//! HYPERVISOR_xen_version: what a Linux HVM guest asks at boot (version,
//! features), following xen/common/kernel.c (do_xen_version).

use thiserror::Error;
use xevtchn_common::xen::errno;
use xevtchn_common::xen::version::*;

use super::config::XenVersion;
use super::error::XenErrno;
use super::guest_memory::{GuestFault, GuestMemory, read_obj, write_obj};

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum VersionError {
    #[error("xen_version command {0} is not implemented")]
    NotImplemented(u32),
    #[error("feature submap {0} does not exist")]
    NoSuchSubmap(u32),
    #[error("XENVER_pagesize takes no argument")]
    UnexpectedArgument,
    #[error(transparent)]
    Fault(#[from] GuestFault),
}

impl XenErrno for VersionError {
    fn errno(&self) -> i32 {
        match self {
            Self::NotImplemented(_) => errno::ENOSYS,
            Self::NoSuchSubmap(_) | Self::UnexpectedArgument => errno::EINVAL,
            Self::Fault(_) => errno::EFAULT,
        }
    }
}

/// HYPERVISOR_xen_version(cmd, arg). Implements XENVER_version,
/// extraversion, get_features and pagesize; the informational commands
/// (compile_info, capabilities, changeset, ...) answer -ENOSYS.
pub fn xen_version<M: GuestMemory + ?Sized>(
    version: &XenVersion,
    cmd: u32,
    arg: u64,
    mem: &M,
) -> Result<i64, VersionError> {
    match cmd {
        XENVER_version => Ok(i64::from(version.major) << 16 | i64::from(version.minor)),
        XENVER_extraversion => {
            let mut bytes = [0u8; XEN_EXTRAVERSION_LEN];
            let text = version.extraversion.as_bytes();
            let len = text.len().min(XEN_EXTRAVERSION_LEN - 1);
            bytes[..len].copy_from_slice(&text[..len]);
            mem.write(arg, &bytes)?;
            Ok(0)
        }
        XENVER_get_features => {
            let mut info: XenFeatureInfo = read_obj(mem, arg)?;
            if info.submap_idx != 0 {
                return Err(VersionError::NoSuchSubmap(info.submap_idx));
            }
            info.submap = version.features;
            write_obj(mem, arg, &info)?;
            Ok(0)
        }
        XENVER_pagesize if arg != 0 => Err(VersionError::UnexpectedArgument),
        XENVER_pagesize => Ok(4096),
        other => Err(VersionError::NotImplemented(other)),
    }
}

#[cfg(test)]
mod tests {
    use xevtchn_common::xen::XenAbi;
    use xevtchn_common::xen::errno::{EFAULT, EINVAL, ENOSYS};

    use super::*;
    use crate::test_support::TestMemory;

    #[test]
    fn version_is_major_16_minor() {
        let mem = TestMemory::new(0, 0);
        assert_eq!(xen_version(&XenVersion::default(), XENVER_version, 0, &mem), Ok((4 << 16) | 17));
    }

    #[test]
    fn extraversion_is_written_nul_padded() {
        let mem = TestMemory::new(0x1000, 0x100);
        assert_eq!(xen_version(&XenVersion::default(), XENVER_extraversion, 0x1010, &mem), Ok(0));
        let mut bytes = [0xffu8; XEN_EXTRAVERSION_LEN];
        mem.read(0x1010, &mut bytes).unwrap();
        assert_eq!(&bytes[..3], b".0\0");
        assert!(bytes[2..].iter().all(|&b| b == 0));
    }

    #[test]
    fn features_submap_0_is_the_configured_set() {
        let mem = TestMemory::new(0x1000, 0x100);
        mem.put(0x1000, &XenFeatureInfo { submap_idx: 0, submap: 0xdead });
        let version = XenVersion::default();
        xen_version(&version, XENVER_get_features, 0x1000, &mem).unwrap();
        let info: XenFeatureInfo = mem.get(0x1000);
        assert_eq!(info.submap, version.features);
        assert_ne!(info.submap & (1 << XENFEAT_hvm_callback_vector), 0);
        assert_eq!(info.submap & (1 << XENFEAT_hvm_safe_pvclock), 0);
    }

    #[test]
    fn features_other_submaps_are_einval() {
        let mem = TestMemory::new(0x1000, 0x100);
        mem.put(0x1000, &XenFeatureInfo { submap_idx: 1, ..XenFeatureInfo::zeroed() });
        let err = xen_version(&XenVersion::default(), XENVER_get_features, 0x1000, &mem).unwrap_err();
        assert_eq!(err.errno(), EINVAL);
    }

    #[test]
    fn unreadable_arguments_are_efault() {
        let mem = TestMemory::new(0x1000, 0x10);
        let version = XenVersion::default();
        assert_eq!(xen_version(&version, XENVER_get_features, 0x2000, &mem).unwrap_err().errno(), EFAULT);
        assert_eq!(xen_version(&version, XENVER_extraversion, 0x1008, &mem).unwrap_err().errno(), EFAULT);
    }

    #[test]
    fn pagesize_and_unimplemented_commands() {
        let mem = TestMemory::new(0, 0);
        let version = XenVersion::default();
        assert_eq!(xen_version(&version, XENVER_pagesize, 0, &mem), Ok(4096));
        assert_eq!(xen_version(&version, XENVER_pagesize, 8, &mem).unwrap_err().errno(), EINVAL);
        assert_eq!(xen_version(&version, XENVER_capabilities, 0, &mem).unwrap_err().errno(), ENOSYS);
        assert_eq!(xen_version(&version, 99, 0, &mem).unwrap_err().errno(), ENOSYS);
    }
}
