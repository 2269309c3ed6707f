//! The VM's interrupt routing table (KVM_SET_GSI_ROUTING), in one place.
//!
//! KVM_SET_GSI_ROUTING replaces the whole table, so one owner composes it:
//! - KVM's defaults, which the call would otherwise drop (PIC and IOAPIC
//!   pins, GSIs 0-23);
//! - one MSI route per vCPU with an upcall vector, `vcpu_gsi(v)`: what the
//!   vCPU's upcall eventfd E_v is an irqfd on;
//! - one MSI route per port with an injector of its own (a port whose
//!   target vCPU can move): moving the port is then a change of this
//!   route, not of its ioeventfd (which would wait for KVM's SRCU).
//!
//! A port route follows its vCPU's vector: it is an MSI to that vCPU's
//! APIC with that vCPU's current vector. KVM allows KVM_MAX_IRQ_ROUTES
//! entries and GSIs below it; `add_port` answers None when they are spent.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
};

use kvm_bindings::{
    KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
    KvmIrqRouting, kvm_irq_routing_entry, kvm_msi,
};
use kvm_ioctls::VmFd;

/// KVM's limit on routing entries and on GSI numbers (KVM_MAX_IRQ_ROUTES
/// in include/linux/kvm_host.h; x86 has no lower one).
pub const MAX_ROUTES: u32 = 4096;
/// Pins of KVM's IOAPIC (GSIs 0-23; 0-15 also reach the PICs).
pub const IOAPIC_PINS: u32 = 24;
/// Entries KVM's defaults take: 16 PIC + 24 IOAPIC pins.
const DEFAULT_ENTRIES: u32 = 16 + IOAPIC_PINS;
/// GSIs of the per-vCPU routes, then of the port routes: above the
/// IOAPIC's pins. (A Xen PCI INTx line may map to GSIs 24-47, which KVM's
/// IOAPIC lacks: such a callback is refused, so these GSIs are free.)
const VCPU_GSI_BASE: u32 = IOAPIC_PINS;

/// The GSI of `vcpu`'s upcall route.
pub const fn vcpu_gsi(vcpu: u32) -> u32 {
    VCPU_GSI_BASE + vcpu
}

/// A fixed, edge, physical-destination MSI to `vcpu`'s APIC (ID = index).
pub fn msi(vcpu: u32, vector: u8) -> kvm_msi {
    kvm_msi { address_lo: 0xfee0_0000 | (vcpu << 12), address_hi: 0, data: u32::from(vector), ..Default::default() }
}

/// What the table should hold; `commit` hands it to KVM.
#[derive(Debug)]
pub struct GsiRoutes {
    /// Each vCPU's upcall vector, if it has one.
    vectors: Vec<Option<u8>>,
    /// Port routes: GSI -> target vCPU.
    ports: BTreeMap<u32, u32>,
}

impl GsiRoutes {
    pub fn new(vcpus: u32) -> Self {
        Self { vectors: vec![None; vcpus as usize], ports: BTreeMap::new() }
    }

    pub fn vector(&self, vcpu: u32) -> Option<u8> {
        self.vectors.get(vcpu as usize).copied().flatten()
    }

    pub fn set_vector(&mut self, vcpu: u32, vector: Option<u8>) {
        if let Some(v) = self.vectors.get_mut(vcpu as usize) {
            *v = vector;
        }
    }

    /// A GSI for a port route to `vcpu` (which must have a vector), or
    /// None when KVM's entries or GSIs are spent.
    pub fn add_port(&mut self, vcpu: u32) -> Option<u32> {
        self.vector(vcpu)?;
        if self.entries() >= MAX_ROUTES {
            return None;
        }
        let first = vcpu_gsi(self.vectors.len() as u32);
        let gsi = (first..MAX_ROUTES).find(|gsi| !self.ports.contains_key(gsi))?;
        self.ports.insert(gsi, vcpu);
        Some(gsi)
    }

    /// Points port route `gsi` at `vcpu` (which must have a vector).
    pub fn move_port(&mut self, gsi: u32, vcpu: u32) -> bool {
        if self.vector(vcpu).is_none() {
            return false;
        }
        self.ports.get_mut(&gsi).map(|target| *target = vcpu).is_some()
    }

    pub fn remove_port(&mut self, gsi: u32) {
        self.ports.remove(&gsi);
    }

    /// Port routes in use.
    pub fn port_routes(&self) -> usize {
        self.ports.len()
    }

    fn entries(&self) -> u32 {
        DEFAULT_ENTRIES + self.vectors.iter().flatten().count() as u32 + self.ports.len() as u32
    }

    /// The table KVM gets.
    pub fn table(&self) -> Vec<kvm_irq_routing_entry> {
        let mut entries = Vec::with_capacity(self.entries() as usize);
        let irqchip = |gsi: u32, chip: u32, pin: u32| {
            let mut e = kvm_irq_routing_entry { gsi, type_: KVM_IRQ_ROUTING_IRQCHIP, ..Default::default() };
            e.u.irqchip.irqchip = chip;
            e.u.irqchip.pin = pin;
            e
        };
        for gsi in 0..IOAPIC_PINS {
            if gsi < 16 {
                let (chip, pin) =
                    if gsi < 8 { (KVM_IRQCHIP_PIC_MASTER, gsi) } else { (KVM_IRQCHIP_PIC_SLAVE, gsi - 8) };
                entries.push(irqchip(gsi, chip, pin));
            }
            entries.push(irqchip(gsi, KVM_IRQCHIP_IOAPIC, gsi));
        }
        let msi_entry = |gsi: u32, vcpu: u32, vector: u8| {
            let m = msi(vcpu, vector);
            let mut e = kvm_irq_routing_entry { gsi, type_: KVM_IRQ_ROUTING_MSI, ..Default::default() };
            e.u.msi.address_lo = m.address_lo;
            e.u.msi.address_hi = m.address_hi;
            e.u.msi.data = m.data;
            e
        };
        for (vcpu, vector) in self.vectors.iter().enumerate() {
            if let Some(vector) = *vector {
                entries.push(msi_entry(vcpu_gsi(vcpu as u32), vcpu as u32, vector));
            }
        }
        for (&gsi, &vcpu) in &self.ports {
            if let Some(vector) = self.vector(vcpu) {
                entries.push(msi_entry(gsi, vcpu, vector));
            }
        }
        entries
    }
}

/// The table, shared by the upcall routes and the fast path: edits take a
/// short lock; commits are serialized, so that a later commit always hands
/// KVM the later table, and no edit waits for KVM.
#[derive(Debug)]
pub struct Routes {
    table: Mutex<GsiRoutes>,
    committing: Mutex<()>,
}

impl Routes {
    pub fn new(vcpus: u32) -> Self {
        Self { table: Mutex::new(GsiRoutes::new(vcpus)), committing: Mutex::new(()) }
    }

    pub fn edit(&self) -> MutexGuard<'_, GsiRoutes> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the table as it is now to KVM (which waits for in-flight
    /// injections on the old one: synchronize_srcu_expedited on the VM's
    /// irq_srcu). Call it without holding `edit`'s guard.
    pub fn commit(&self, vm: &VmFd) -> std::io::Result<()> {
        let _in_order = self.committing.lock().unwrap_or_else(|p| p.into_inner());
        let table = self.edit().table();
        let routing = KvmIrqRouting::from_entries(&table)
            .map_err(|_| std::io::Error::other("more interrupt routes than KVM allows"))?;
        vm.set_gsi_routing(&routing).map_err(|e| std::io::Error::from_raw_os_error(e.errno()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msi_routes(routes: &GsiRoutes) -> Vec<(u32, u32, u32)> {
        routes
            .table()
            .iter()
            .filter(|e| e.type_ == KVM_IRQ_ROUTING_MSI)
            // SAFETY: `msi` is the member an MSI entry uses.
            .map(|e| unsafe { (e.gsi, (e.u.msi.address_lo >> 12) & 0xff, e.u.msi.data) })
            .collect()
    }

    #[test]
    fn port_routes_follow_their_vcpu_and_its_vector() {
        let mut routes = GsiRoutes::new(3);
        assert_eq!(routes.add_port(1), None, "no vector yet: no route");
        routes.set_vector(1, Some(0xf3));
        routes.set_vector(2, Some(0xf4));
        let gsi = routes.add_port(1).unwrap();
        assert!(gsi >= vcpu_gsi(3), "above the vCPU routes");
        assert_eq!(msi_routes(&routes), [(vcpu_gsi(1), 1, 0xf3), (vcpu_gsi(2), 2, 0xf4), (gsi, 1, 0xf3)]);
        assert!(routes.move_port(gsi, 2));
        assert!(!routes.move_port(gsi, 0), "vCPU 0 has no vector");
        routes.set_vector(2, Some(0xf5));
        assert_eq!(msi_routes(&routes)[2], (gsi, 2, 0xf5));
        routes.remove_port(gsi);
        assert_eq!(routes.port_routes(), 0);
        // The defaults stay: 16 PIC and 24 IOAPIC entries.
        assert_eq!(routes.table().len(), 40 + 2);
    }

    #[test]
    fn kvm_limits_are_kept() {
        let mut routes = GsiRoutes::new(32);
        for v in 0..32 {
            routes.set_vector(v, Some(0xf0));
        }
        let mut added = 0;
        while routes.add_port(added % 32).is_some() {
            added += 1;
        }
        assert_eq!(added, MAX_ROUTES - 40 - 32, "entries, not GSIs, run out first");
        assert_eq!(routes.table().len(), MAX_ROUTES as usize);
        assert!(routes.table().iter().all(|e| e.gsi < MAX_ROUTES));
    }
}
