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
    #[error("xen_version command {0} is privileged")]
    Denied(u32),
    #[error(transparent)]
    Fault(#[from] GuestFault),
}

impl XenErrno for VersionError {
    fn errno(&self) -> i32 {
        match self {
            Self::NotImplemented(_) => errno::ENOSYS,
            Self::NoSuchSubmap(_) | Self::UnexpectedArgument => errno::EINVAL,
            Self::Denied(_) => errno::EPERM,
            Self::Fault(_) => errno::EFAULT,
        }
    }
}

/// What a domU may see of the informational commands, as Xen's default
/// XSM policy answers it (xen/include/xsm/dummy.h, xsm_xen_version): the
/// command line is privileged and reads "<denied>", the build id is -EPERM.
const DENIED: &str = "<denied>";
/// Xen's x86_64 HYPERVISOR_VIRT_START (arch-x86/xen-x86_64.h), which
/// XENVER_platform_parameters reports.
const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
/// The ABIs a 64-bit-only Xen offers an HVM guest (xen/arch/x86/setup.c,
/// arch_get_xen_caps, without the 32-bit ones xevtchn does not implement).
const CAPABILITIES: &str = "xen-3.0-x86_64 hvm-3.0-x86_64";

/// HYPERVISOR_xen_version(cmd, arg), following xen/common/kernel.c
/// (do_xen_version): every command of Xen 4.17's version.h.
/// XENVER_build_id answers -EPERM, as Xen does for a domU; anything else
/// -ENOSYS.
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
        // struct xen_compile_info: compiler[64], compile_by[16],
        // compile_domain[32], compile_date[32].
        XENVER_compile_info => {
            let mut info = [0u8; 64 + 16 + 32 + 32];
            put_str(&mut info[..64], concat!("rustc (xevtchn ", env!("CARGO_PKG_VERSION"), ")"));
            put_str(&mut info[64..80], "xevtchn");
            put_str(&mut info[80..112], "xevtchn");
            put_str(&mut info[112..], "unknown");
            mem.write(arg, &info)?;
            Ok(0)
        }
        XENVER_capabilities => write_str(mem, arg, CAPABILITIES, 1024),
        XENVER_changeset => write_str(mem, arg, concat!("xevtchn ", env!("CARGO_PKG_VERSION")), 64),
        XENVER_platform_parameters => {
            mem.write(arg, &HYPERVISOR_VIRT_START.to_le_bytes())?;
            Ok(0)
        }
        // xen_domain_handle_t: the domain's UUID, all zeros as for a domain
        // created without one.
        XENVER_guest_handle => {
            mem.write(arg, &[0u8; 16])?;
            Ok(0)
        }
        XENVER_commandline => write_str(mem, arg, DENIED, 1024),
        XENVER_build_id => Err(VersionError::Denied(cmd)),
        other => Err(VersionError::NotImplemented(other)),
    }
}

/// `text` NUL-padded into `field` (truncated to leave the NUL).
fn put_str(field: &mut [u8], text: &str) {
    let len = text.len().min(field.len() - 1);
    field[..len].copy_from_slice(&text.as_bytes()[..len]);
}

/// Writes `text` as a NUL-padded `char[size]`.
fn write_str<M: GuestMemory + ?Sized>(mem: &M, arg: u64, text: &str, size: usize) -> Result<i64, VersionError> {
    let mut field = vec![0u8; size];
    put_str(&mut field, text);
    mem.write(arg, &field)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use xevtchn_common::xen::XenAbi;
    use xevtchn_common::xen::errno::{EFAULT, EINVAL, ENOSYS, EPERM};

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
        assert_eq!(info.submap & (1 << XENFEAT_hvm_callback_vector), 0, "the VECTOR callback is refused");
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
        assert_eq!(xen_version(&version, 99, 0, &mem).unwrap_err().errno(), ENOSYS);
    }

    #[test]
    fn informational_commands_answer_as_to_a_domu() {
        let mem = TestMemory::new(0x1000, 0x1000);
        let version = XenVersion::default();
        let text = |cmd, size| {
            assert_eq!(xen_version(&version, cmd, 0x1000, &mem), Ok(0));
            let mut bytes = vec![0u8; size];
            mem.read(0x1000, &mut bytes).unwrap();
            String::from_utf8(bytes.split(|&b| b == 0).next().unwrap().to_vec()).unwrap()
        };
        assert!(text(XENVER_capabilities, 1024).contains("hvm-3.0-x86_64"));
        assert_eq!(text(XENVER_commandline, 1024), "<denied>");
        assert!(text(XENVER_changeset, 64).starts_with("xevtchn"));
        assert!(text(XENVER_compile_info, 64).starts_with("rustc"));
        assert_eq!(xen_version(&version, XENVER_platform_parameters, 0x1000, &mem), Ok(0));
        let mut start = [0u8; 8];
        mem.read(0x1000, &mut start).unwrap();
        assert_eq!(u64::from_le_bytes(start), 0xffff_8000_0000_0000);
        assert_eq!(xen_version(&version, XENVER_guest_handle, 0x1000, &mem), Ok(0));
        assert_eq!(xen_version(&version, XENVER_build_id, 0x1000, &mem).unwrap_err().errno(), EPERM);
        assert_eq!(xen_version(&version, XENVER_capabilities, 0x1f00, &mem).unwrap_err().errno(), EFAULT);
    }
}
