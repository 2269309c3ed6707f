//! Guest pointers, as hypercall arguments carry them: guest-virtual
//! addresses translated through the guest's own page tables (KVM_TRANSLATE
//! on the calling vCPU), then read or written in guest RAM.

use vm_memory::{Bytes, GuestAddress};

use super::{exit::VcpuState, memory::GuestRam};

const PAGE: u64 = 4096;

/// The guest pointer could not be followed: unmapped, or not RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault(pub u64);

/// Guest-virtual memory as seen by one vCPU.
pub struct GuestVirtual<'a> {
    pub vcpu: &'a dyn VcpuState,
    pub ram: &'a GuestRam,
}

impl GuestVirtual<'_> {
    fn translate(&self, gva: u64) -> Result<u64, Fault> {
        self.vcpu.translate(gva).ok_or(Fault(gva))
    }

    /// Splits `[gva, gva + len)` at page boundaries: (gpa, offset into buffer, length).
    fn pages(&self, gva: u64, len: usize) -> Result<Vec<(u64, usize, usize)>, Fault> {
        let mut out = Vec::new();
        let mut done = 0usize;
        while done < len {
            let va = gva.checked_add(done as u64).ok_or(Fault(gva))?;
            let chunk = ((PAGE - va % PAGE) as usize).min(len - done);
            out.push((self.translate(va)?, done, chunk));
            done += chunk;
        }
        Ok(out)
    }

    pub fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), Fault> {
        for (gpa, offset, len) in self.pages(gva, buf.len())? {
            self.ram
                .read_slice(&mut buf[offset..offset + len], GuestAddress(gpa))
                .map_err(|_| Fault(gva + offset as u64))?;
        }
        Ok(())
    }

    pub fn write(&self, gva: u64, buf: &[u8]) -> Result<(), Fault> {
        // Translate every page first, so that an unmapped page writes nothing.
        let pages = self.pages(gva, buf.len())?;
        for (gpa, offset, len) in pages {
            self.ram
                .write_slice(&buf[offset..offset + len], GuestAddress(gpa))
                .map_err(|_| Fault(gva + offset as u64))?;
        }
        Ok(())
    }
}
