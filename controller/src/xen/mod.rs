//! The Xen hypervisor side of event channels as pure logic. TODO(helper)
