//! Xen's PVH boot (docs/misc/pvh.pandoc): load an ELF kernel whose note
//! XEN_ELFNOTE_PHYS32_ENTRY names a 32-bit entry point, write the
//! `hvm_start_info` (arch-x86/hvm/start_info.h, version 1: command line
//! and memory map) and start vCPU 0 there in 32-bit flat protected mode
//! with paging off and ebx pointing at the start info.
//!
//! Like Xen's libelf (elf_xen_parse), the note is looked for in PT_NOTE
//! segments first, then in SHT_NOTE sections; segments are loaded at
//! their physical addresses (p_paddr), as for an HVM domain.

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use object::{
    Endianness, FileKind,
    elf::{FileHeader32, FileHeader64, PT_LOAD, PT_NOTE},
    read::elf::{FileHeader, ProgramHeader, SectionHeader},
};
use vm_memory::{Bytes, GuestAddress};
use xevtchn_common::{doorbell::DOORBELL_END, layout::MMIO_BASE};

use super::{VmmError, memory::GuestRam};
use crate::xen::E820Entry;

/// xen/include/public/elfnote.h.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// start_info.h: "xEn3" with the high bit of the "E" set.
const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
const START_INFO_SIZE: usize = 56;
const MEMMAP_ENTRY_SIZE: usize = 24;
const PAGE: u64 = 4096;
/// The command line gets a page of its own, NUL included.
pub const CMDLINE_MAX: usize = PAGE as usize - 1;

/// Where a loaded PVH kernel starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PvhStart {
    /// The 32-bit physical entry point.
    pub entry: u32,
    /// Guest-physical address of the hvm_start_info (for ebx).
    pub start_info: u64,
}

/// The page of RAM the VMM keeps for the PV console's ring (its top one),
/// which the memory map reserves, as Xen's toolstack keeps special pages
/// out of the guest's RAM.
pub fn console_ring_page(ram_size: u64) -> u64 {
    ram_size - PAGE
}

/// The memory map a guest of `ram_size` bytes gets, in hvm_start_info and
/// from XENMEM_memory_map: its RAM but the console ring's page, which is
/// reserved, and the VMM's MMIO window reserved.
pub fn memory_map(ram_size: u64) -> Vec<E820Entry> {
    vec![
        E820Entry { addr: 0, size: console_ring_page(ram_size), kind: E820Entry::RAM },
        E820Entry { addr: console_ring_page(ram_size), size: PAGE, kind: E820Entry::RESERVED },
        E820Entry {
            addr: MMIO_BASE,
            size: (DOORBELL_END - MMIO_BASE).next_multiple_of(PAGE),
            kind: E820Entry::RESERVED,
        },
    ]
}

/// Loads `image` into `ram` and writes its start info after it.
pub fn load(ram: &GuestRam, image: &[u8], cmdline: &str, map: &[E820Entry]) -> Result<PvhStart, VmmError> {
    if cmdline.len() > CMDLINE_MAX {
        return Err(VmmError::BadImage(format!(
            "the command line is {} bytes; at most {CMDLINE_MAX} fit",
            cmdline.len()
        )));
    }
    let bad = |e: object::Error| VmmError::BadImage(e.to_string());
    let (entry, end) = match FileKind::parse(image).map_err(bad)? {
        FileKind::Elf32 => load_elf::<FileHeader32<Endianness>>(ram, image)?,
        FileKind::Elf64 => load_elf::<FileHeader64<Endianness>>(ram, image)?,
        other => return Err(VmmError::BadImage(format!("a {other:?} file, not an ELF kernel"))),
    };
    let entry = entry.ok_or_else(|| {
        VmmError::BadImage(
            "no XEN_ELFNOTE_PHYS32_ENTRY note: this kernel has no PVH entry point \
             (Linux needs CONFIG_PVH=y; its vmlinux, not bzImage, carries the note)"
                .into(),
        )
    })?;
    let start_info = end.next_multiple_of(PAGE);
    write_start_info(ram, start_info, cmdline, map)?;
    Ok(PvhStart { entry, start_info })
}

/// Loads the PT_LOAD segments; returns the PVH entry (if noted) and the
/// end of the highest segment.
fn load_elf<E: FileHeader<Endian = Endianness>>(ram: &GuestRam, image: &[u8]) -> Result<(Option<u32>, u64), VmmError> {
    let bad = |e: object::Error| VmmError::BadImage(e.to_string());
    let header = E::parse(image).map_err(bad)?;
    let endian = header.endian().map_err(bad)?;
    let ram_size: u64 = vm_memory::GuestMemoryBackend::iter(ram).map(vm_memory::GuestMemoryRegion::len).sum();
    let mut entry = None;
    let mut end = 0;
    for segment in header.program_headers(endian, image).map_err(bad)? {
        match segment.p_type(endian) {
            PT_NOTE => {
                if let Some(mut notes) = segment.notes(endian, image).map_err(bad)? {
                    while let Some(note) = notes.next().map_err(bad)? {
                        entry = entry.or(pvh_entry(note.name(), note.n_type(endian).0, note.desc()));
                    }
                }
            }
            PT_LOAD => {
                let paddr: u64 = segment.p_paddr(endian).into();
                let memsz: u64 = segment.p_memsz(endian).into();
                let data = segment
                    .data(endian, image)
                    .map_err(|()| VmmError::BadImage(format!("the segment at {paddr:#x} lies outside the file")))?;
                let seg_end = paddr.checked_add(memsz).filter(|&e| e <= ram_size).ok_or_else(|| {
                    VmmError::BadImage(format!(
                        "the segment at {paddr:#x} ({memsz} bytes) does not fit in {} MiB of guest RAM",
                        ram_size >> 20
                    ))
                })?;
                // The rest up to memsz (.bss) is fresh anonymous RAM: zeros.
                ram.write_slice(data, GuestAddress(paddr)).map_err(|_| VmmError::GuestAccess(paddr))?;
                end = end.max(seg_end);
            }
            _ => {}
        }
    }
    if entry.is_none() {
        for section in header.sections(endian, image).map_err(bad)?.iter() {
            if let Some(mut notes) = section.notes(endian, image).map_err(bad)? {
                while let Some(note) = notes.next().map_err(bad)? {
                    entry = entry.or(pvh_entry(note.name(), note.n_type(endian).0, note.desc()));
                }
            }
        }
    }
    Ok((entry, end))
}

/// The entry point of a "Xen" XEN_ELFNOTE_PHYS32_ENTRY note (libelf reads
/// numeric notes of 4 or 8 bytes).
fn pvh_entry(name: &[u8], kind: u32, desc: &[u8]) -> Option<u32> {
    if name != b"Xen" || kind != XEN_ELFNOTE_PHYS32_ENTRY {
        return None;
    }
    match desc.len() {
        4 => Some(u32::from_le_bytes(desc.try_into().ok()?)),
        8 => u32::try_from(u64::from_le_bytes(desc.try_into().ok()?)).ok(),
        _ => None,
    }
}

/// `struct hvm_start_info` (version 1) at `gpa`, its memory map right
/// after it and the command line on the next page.
fn write_start_info(ram: &GuestRam, gpa: u64, cmdline: &str, map: &[E820Entry]) -> Result<(), VmmError> {
    let memmap = gpa + 64;
    let cmdline_gpa = gpa + PAGE;
    assert!(64 + map.len() * MEMMAP_ENTRY_SIZE <= PAGE as usize, "the memory map fits its page");
    let mut info = [0u8; START_INFO_SIZE];
    info[0..4].copy_from_slice(&XEN_HVM_START_MAGIC_VALUE.to_le_bytes());
    info[4..8].copy_from_slice(&1u32.to_le_bytes()); // version
    // flags, nr_modules, modlist_paddr: 0.
    info[24..32].copy_from_slice(&cmdline_gpa.to_le_bytes());
    // rsdp_paddr: 0 (no ACPI tables).
    info[40..48].copy_from_slice(&memmap.to_le_bytes());
    info[48..52].copy_from_slice(&(map.len() as u32).to_le_bytes());
    let mut entries = Vec::with_capacity(map.len() * MEMMAP_ENTRY_SIZE);
    for e in map {
        // struct hvm_memmap_table_entry: addr, size, type, reserved.
        entries.extend(e.addr.to_le_bytes());
        entries.extend(e.size.to_le_bytes());
        entries.extend(e.kind.to_le_bytes());
        entries.extend(0u32.to_le_bytes());
    }
    let mut line = cmdline.as_bytes().to_vec();
    line.push(0);
    for (at, bytes) in [(gpa, &info[..]), (memmap, &entries[..]), (cmdline_gpa, &line[..])] {
        ram.write_slice(bytes, GuestAddress(at)).map_err(|_| {
            VmmError::BadImage(format!("the start info at {at:#x}, after the kernel, does not fit in guest RAM"))
        })?;
    }
    Ok(())
}

/// The PVH entry state: CR0.PE without paging, flat 32-bit segments, a
/// busy 32-bit TSS in TR (the spec leaves its base and limit unspecified).
pub fn entry_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    const CR0_PE: u64 = 1 << 0;
    const CR0_ET: u64 = 1 << 4;
    let flat = |selector: u16, type_: u8| kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: 1,
        s: 1,
        l: 0,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    sregs.cr0 = CR0_PE | CR0_ET;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    sregs.cs = flat(0x08, 0xb);
    let data = flat(0x10, 0x3);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = kvm_segment { selector: 0x18, limit: 0x67, type_: 0xb, s: 0, db: 0, g: 0, ..flat(0x18, 0xb) };
    sregs.gdt.base = 0;
    sregs.gdt.limit = 0;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs
}

/// ebx holds the start info; everything else is unspecified (zero here).
pub fn entry_regs(start: PvhStart) -> kvm_regs {
    kvm_regs { rip: u64::from(start.entry), rbx: start.start_info, rflags: 0x2, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_must_be_xens_phys32_entry() {
        assert_eq!(pvh_entry(b"Xen", 18, &0x10_0000u32.to_le_bytes()), Some(0x10_0000));
        assert_eq!(pvh_entry(b"Xen", 18, &0x10_0000u64.to_le_bytes()), Some(0x10_0000));
        assert_eq!(pvh_entry(b"Xen", 18, &(1u64 << 32).to_le_bytes()), None, "not 32-bit");
        assert_eq!(pvh_entry(b"Xen", 1, &0x10_0000u32.to_le_bytes()), None);
        assert_eq!(pvh_entry(b"GNU", 18, &0x10_0000u32.to_le_bytes()), None);
    }

    #[test]
    fn start_info_is_version_1_with_the_map_and_the_command_line() {
        let ram = super::super::memory::anonymous_ram(1 << 20).unwrap();
        let map = memory_map(1 << 20);
        write_start_info(&ram, 0x4000, "console=hvc0", &map).unwrap();
        let word = |gpa: u64| ram.read_obj::<u32>(GuestAddress(gpa)).unwrap();
        let quad = |gpa: u64| ram.read_obj::<u64>(GuestAddress(gpa)).unwrap();
        assert_eq!((word(0x4000), word(0x4004)), (XEN_HVM_START_MAGIC_VALUE, 1));
        assert_eq!(quad(0x4000 + 40), 0x4040, "memmap_paddr");
        assert_eq!(word(0x4000 + 48), 3, "memmap_entries");
        assert_eq!((quad(0x4040), quad(0x4048), word(0x4050)), (0, (1 << 20) - 4096, E820Entry::RAM));
        assert_eq!(word(0x4040 + 24 + 16), E820Entry::RESERVED, "the console ring's page");
        assert_eq!(word(0x4040 + 48 + 16), E820Entry::RESERVED, "the MMIO window");
        let mut line = [0u8; 13];
        ram.read_slice(&mut line, GuestAddress(quad(0x4000 + 24))).unwrap();
        assert_eq!(&line, b"console=hvc0\0");
        assert!(load(&ram, b"\x7fELF", &"x".repeat(CMDLINE_MAX + 1), &map).is_err());
    }

    #[test]
    fn the_built_in_guest_boots_through_the_pvh_entry_too() {
        let image = super::super::vm::GUEST_IMAGE;
        assert!(!image.is_empty(), "built with XEVTCHN_SKIP_GUEST=1: no built-in guest to check");
        let ram = super::super::memory::anonymous_ram(64 << 20).unwrap();
        let start = load(&ram, image, "", &memory_map(64 << 20)).expect("the built-in guest is a PVH kernel");
        assert!((0x20_0000..0x40_0000).contains(&start.entry), "{:#x}", start.entry);
    }

    #[test]
    fn entry_state_is_flat_protected_mode_without_paging() {
        let sregs = entry_sregs(kvm_sregs::default());
        assert_eq!(sregs.cr0 & (1 << 31), 0, "paging off");
        assert_eq!(sregs.cr0 & 1, 1, "protected mode");
        assert_eq!((sregs.cs.db, sregs.cs.l, sregs.cs.limit), (1, 0, 0xffff_ffff));
        let regs = entry_regs(PvhStart { entry: 0x10_0000, start_info: 0x20_0000 });
        assert_eq!((regs.rip, regs.rbx, regs.rflags & (1 << 9)), (0x10_0000, 0x20_0000, 0));
    }
}
