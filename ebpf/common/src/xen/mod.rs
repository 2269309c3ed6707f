//! Xen ABI mirror. TODO(helper)
