//! Guest memory for unit tests: one flat range of guest virtual addresses;
//! anything outside it faults, like an unmapped page.

use std::cell::RefCell;

use xevtchn_common::xen::XenAbi;

use super::guest_memory::{GuestFault, GuestMemory, read_obj, write_obj};

pub struct TestMemory {
    base: u64,
    bytes: RefCell<Vec<u8>>,
}

impl TestMemory {
    /// `len` readable and writable bytes at guest virtual address `base`.
    pub fn new(base: u64, len: usize) -> Self {
        Self { base, bytes: RefCell::new(vec![0; len]) }
    }

    fn range(&self, gva: u64, len: usize) -> Result<std::ops::Range<usize>, GuestFault> {
        let fault = GuestFault { gva, len };
        let start = usize::try_from(gva.checked_sub(self.base).ok_or(fault)?).map_err(|_| fault)?;
        let end = start.checked_add(len).ok_or(fault)?;
        if end > self.bytes.borrow().len() {
            return Err(fault);
        }
        Ok(start..end)
    }

    pub fn put<T: XenAbi>(&self, gva: u64, value: &T) {
        write_obj(self, gva, value).expect("test writes inside its memory");
    }

    pub fn get<T: XenAbi>(&self, gva: u64) -> T {
        read_obj(self, gva).expect("test reads inside its memory")
    }
}

impl GuestMemory for TestMemory {
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        let range = self.range(gva, buf.len())?;
        buf.copy_from_slice(&self.bytes.borrow()[range]);
        Ok(())
    }

    fn write(&self, gva: u64, data: &[u8]) -> Result<(), GuestFault> {
        let range = self.range(gva, data.len())?;
        self.bytes.borrow_mut()[range].copy_from_slice(data);
        Ok(())
    }
}
