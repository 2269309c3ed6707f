//! Host-side backend ports: the other ends of interdomain channels whose
//! backend is a host userspace device model, not another Xen domain.
//!
//! A backend port is unbound (waiting for the guest to bind_interdomain to
//! it) or connected to one guest port. Numbered from 1 like guest ports;
//! they are not in the guest's port space.

use super::ports::NR_PORTS;

#[derive(Clone, Debug)]
pub struct BackendPorts {
    /// Indexed by backend port; `None` is free; 0 is never used.
    ends: Vec<Option<BackendEnd>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendEnd {
    /// The guest port it is connected to; `None` while unbound.
    pub guest_port: Option<u32>,
}

impl Default for BackendPorts {
    fn default() -> Self {
        Self { ends: vec![None; NR_PORTS as usize] }
    }
}

impl BackendPorts {
    /// Allocates the lowest free backend port from 1.
    pub fn alloc(&mut self, guest_port: Option<u32>) -> Option<u32> {
        let port = (1..NR_PORTS).find(|&p| self.ends[p as usize].is_none())?;
        self.ends[port as usize] = Some(BackendEnd { guest_port });
        Some(port)
    }

    pub fn get(&self, port: u32) -> Option<BackendEnd> {
        self.ends.get(port as usize).copied().flatten()
    }

    /// Connects or disconnects an allocated backend port.
    pub fn set_guest_port(&mut self, port: u32, guest_port: Option<u32>) {
        if let Some(Some(end)) = self.ends.get_mut(port as usize) {
            end.guest_port = guest_port;
        }
    }

    pub fn free(&mut self, port: u32) {
        if let Some(slot) = self.ends.get_mut(port as usize) {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_linear_from_one_and_reuses_freed_ports() {
        let mut ends = BackendPorts::default();
        assert_eq!(ends.alloc(None), Some(1));
        assert_eq!(ends.alloc(Some(5)), Some(2));
        assert_eq!(ends.get(2), Some(BackendEnd { guest_port: Some(5) }));
        ends.free(1);
        assert_eq!(ends.get(1), None);
        assert_eq!(ends.alloc(None), Some(1));
        ends.set_guest_port(1, Some(9));
        assert_eq!(ends.get(1).unwrap().guest_port, Some(9));
        assert_eq!(ends.get(0), None);
        assert_eq!(ends.get(NR_PORTS), None);
    }
}
