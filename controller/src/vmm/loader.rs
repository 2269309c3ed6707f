//! Loads the built-in guest, a static ELF64 linked at its load address.

use object::{Object, ObjectSegment};
use vm_memory::{Bytes, GuestAddress};

use super::{VmmError, memory::GuestRam};

/// Copies every loadable segment of `image` into `ram`; returns the entry point.
pub fn load_elf(ram: &GuestRam, image: &[u8]) -> Result<u64, VmmError> {
    if image.is_empty() {
        return Err(VmmError::NoGuestImage);
    }
    let file = object::File::parse(image).map_err(|e| VmmError::BadImage(e.to_string()))?;
    for segment in file.segments() {
        let data = segment.data().map_err(|e| VmmError::BadImage(e.to_string()))?;
        let addr = segment.address();
        ram.write_slice(data, GuestAddress(addr))
            .map_err(|_| VmmError::BadImage(format!("segment at {addr:#x} does not fit in guest RAM")))?;
    }
    Ok(file.entry())
}
