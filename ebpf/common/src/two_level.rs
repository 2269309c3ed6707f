//! The 2-level event-channel algorithm (see notes/xen.md). TODO(helper)
