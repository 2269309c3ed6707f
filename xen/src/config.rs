//! What the VMM decides about the Xen domain before it boots.

use thiserror::Error;
use xevtchn_common::two_level;
use xevtchn_common::xen::hypercall::DOMID_FIRST_RESERVED;
use xevtchn_common::xen::version::{
    XEN_EXTRAVERSION_LEN, XENFEAT_auto_translated_physmap, XENFEAT_not_direct_mapped, XENFEAT_writable_page_tables,
};

use super::error::DomainIds;
use super::memory_ops::E820Entry;

/// The Xen version reported by `xen_version` (and, by the VMM, in CPUID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XenVersion {
    pub major: u16,
    pub minor: u16,
    /// XENVER_extraversion, at most 15 bytes (16 with the NUL).
    pub extraversion: String,
    /// XENVER_get_features submap 0: `1 << XENFEAT_*`.
    pub features: u32,
}

impl Default for XenVersion {
    /// Xen 4.17, with the features Xen gives an HVM domU (kernel.c,
    /// XENVER_get_features) minus `hvm_safe_pvclock` (the time fields are
    /// set once, not kept across TSC changes) and `hvm_callback_vector`
    /// (the VECTOR callback is refused: see HvmError::VectorCallbackUnavailable).
    fn default() -> Self {
        Self {
            major: 4,
            minor: 17,
            extraversion: ".0".into(),
            features: (1 << XENFEAT_writable_page_tables)
                | (1 << XENFEAT_auto_translated_physmap)
                | (1 << XENFEAT_not_direct_mapped),
        }
    }
}

/// Configuration of the guest domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// The guest's domain id (a domU: 1 by default).
    pub domid: u16,
    /// The domain host-side backends appear as (0, dom0, by default). A
    /// guest binds to a backend with bind_interdomain(remote_dom = this).
    pub backend_domid: u16,
    /// Number of vCPUs, 1..=128 (Xen's HVM_MAX_VCPUS). vCPUs from 32 on
    /// have no vcpu_info in shared_info: they get events once they register
    /// one (VCPUOP_register_vcpu_info).
    pub nr_vcpus: u32,
    /// GSIs a GSI callback may use (KVM's IOAPIC has 24 pins); Xen ignores
    /// a callback GSI at or above its `nr_gsis`.
    pub nr_gsis: u32,
    pub version: XenVersion,
    /// What XENMEM_memory_map returns (empty: -ENOSYS, as a Xen domain
    /// built without one).
    pub memory_map: Vec<E820Entry>,
    /// Guest RAM is [0, ram_end): where a vcpu_info may be registered (0:
    /// nowhere).
    pub ram_end: u64,
}

impl Default for DomainConfig {
    fn default() -> Self {
        Self {
            domid: 1,
            backend_domid: 0,
            nr_vcpus: 1,
            nr_gsis: 24,
            version: XenVersion::default(),
            memory_map: Vec::new(),
            ram_end: 0,
        }
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("a domain needs at least one vCPU")]
    NoVcpus,
    #[error("{0} vCPUs requested, but an HVM domain has at most {max} (Xen's HVM_MAX_VCPUS)", max = two_level::MAX_VCPUS)]
    TooManyVcpus(u32),
    #[error("domain id {0:#x} is reserved (>= DOMID_FIRST_RESERVED)")]
    ReservedDomid(u16),
    #[error("the guest and the backend domain cannot both be domain {0}")]
    SameDomid(u16),
    #[error("extraversion {0:?} is longer than {max} bytes", max = XEN_EXTRAVERSION_LEN - 1)]
    ExtraversionTooLong(String),
}

impl DomainConfig {
    /// Checks the configuration; the `Domain` constructor calls this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nr_vcpus == 0 {
            return Err(ConfigError::NoVcpus);
        }
        if self.nr_vcpus > two_level::MAX_VCPUS {
            return Err(ConfigError::TooManyVcpus(self.nr_vcpus));
        }
        for domid in [self.domid, self.backend_domid] {
            if domid >= DOMID_FIRST_RESERVED {
                return Err(ConfigError::ReservedDomid(domid));
            }
        }
        if self.domid == self.backend_domid {
            return Err(ConfigError::SameDomid(self.domid));
        }
        if self.version.extraversion.len() >= XEN_EXTRAVERSION_LEN {
            return Err(ConfigError::ExtraversionTooLong(self.version.extraversion.clone()));
        }
        Ok(())
    }

    pub fn ids(&self) -> DomainIds {
        DomainIds { domid: self.domid, backend_domid: self.backend_domid }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(DomainConfig::default().validate(), Ok(()));
    }

    #[test]
    fn vcpu_count_is_xens_hvm_maximum() {
        let config = |nr_vcpus| DomainConfig { nr_vcpus, ..DomainConfig::default() };
        assert_eq!(config(0).validate(), Err(ConfigError::NoVcpus));
        assert_eq!(config(33).validate(), Ok(()));
        assert_eq!(config(128).validate(), Ok(()));
        assert_eq!(config(129).validate(), Err(ConfigError::TooManyVcpus(129)));
    }

    #[test]
    fn domids_must_be_ordinary_and_distinct() {
        let reserved = DomainConfig { domid: 0x7ff0, ..DomainConfig::default() };
        assert_eq!(reserved.validate(), Err(ConfigError::ReservedDomid(0x7ff0)));
        let same = DomainConfig { domid: 0, ..DomainConfig::default() };
        assert_eq!(same.validate(), Err(ConfigError::SameDomid(0)));
    }

    #[test]
    fn extraversion_must_fit_with_its_nul() {
        let mut config = DomainConfig::default();
        config.version.extraversion = "x".repeat(16);
        assert!(matches!(config.validate(), Err(ConfigError::ExtraversionTooLong(_))));
    }
}
