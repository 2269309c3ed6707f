//! What every hypercall error has in common: the Xen errno the guest sees,
//! and the domain lookup that several ops start with.

use thiserror::Error;
use xevtchn_common::xen::errno;
use xevtchn_common::xen::hypercall::DOMID_SELF;

/// An error that reaches the guest as a negated Xen errno in rax.
pub trait XenErrno {
    /// The positive Xen errno (xen/include/public/errno.h).
    fn errno(&self) -> i32;

    /// The value the hypercall returns: `-errno`.
    fn ret(&self) -> i64 {
        -i64::from(self.errno())
    }
}

/// The guest named a domain other than itself in a `domid` field.
///
/// Xen resolves these with rcu_lock_domain_by_any_id(): an unknown domain
/// is -ESRCH; an existing domain the caller may not act on is refused by
/// XSM with -EPERM. Here the only other domain that exists is the host's
/// backend domain.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum DomainLookupError {
    #[error("domain {0} does not exist")]
    NoSuchDomain(u16),
    #[error("domain {0} is the backend domain, which this guest may not act on")]
    NotPermitted(u16),
}

impl XenErrno for DomainLookupError {
    fn errno(&self) -> i32 {
        match self {
            Self::NoSuchDomain(_) => errno::ESRCH,
            Self::NotPermitted(_) => errno::EPERM,
        }
    }
}

/// The domain ids this hypervisor knows: the guest's and the backend's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainIds {
    /// The guest's own id.
    pub domid: u16,
    /// The id of the domain that host-side backends live in (dom0 on Xen).
    pub backend_domid: u16,
}

impl DomainIds {
    /// Whether `dom` names the guest itself (DOMID_SELF or its own id).
    pub fn is_self(&self, dom: u16) -> bool {
        dom == DOMID_SELF || dom == self.domid
    }

    /// Accepts `dom` only if it names the guest itself.
    pub fn require_self(&self, dom: u16) -> Result<(), DomainLookupError> {
        if self.is_self(dom) {
            Ok(())
        } else if dom == self.backend_domid {
            Err(DomainLookupError::NotPermitted(dom))
        } else {
            Err(DomainLookupError::NoSuchDomain(dom))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: DomainIds = DomainIds { domid: 1, backend_domid: 0 };

    #[test]
    fn self_is_domid_self_or_own_id() {
        assert_eq!(IDS.require_self(DOMID_SELF), Ok(()));
        assert_eq!(IDS.require_self(1), Ok(()));
    }

    #[test]
    fn other_domains_get_xen_errnos() {
        assert_eq!(IDS.require_self(0).unwrap_err().ret(), -i64::from(errno::EPERM));
        assert_eq!(IDS.require_self(7).unwrap_err().ret(), -i64::from(errno::ESRCH));
    }
}
