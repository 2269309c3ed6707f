//! Compares the Xen ABI mirror (`xevtchn_common::xen`) with Xen's real
//! public headers: a C program includes /usr/include/xen/* (Debian package
//! `libxen-dev`) and prints every size, offset and constant we mirror; this
//! test compiles it with gcc, runs it and checks every value.
//!
//! Missing gcc or headers make the test fail, never pass silently.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use xevtchn_common::xen::evtchn::*;
use xevtchn_common::xen::hvm::{XenHvmEvtchnUpcallVector, XenHvmParam};
use xevtchn_common::xen::memory::XenAddToPhysmap;
use xevtchn_common::xen::sched::{SchedPoll, SchedShutdown};
use xevtchn_common::xen::shared_info::*;
use xevtchn_common::xen::vcpu::{VcpuRegisterVcpuInfo, VcpuSetSingleshotTimer};
use xevtchn_common::xen::version::XenFeatureInfo;
use xevtchn_common::xen::{cpuid, errno, evtchn, hvm, hypercall, memory, sched, vcpu, version, virq};

const INSTALL_HINT: &str = "install Xen's public headers and a C compiler: apt-get install libxen-dev gcc";

/// One value to compare: the C expression and what Rust says it is.
struct Check {
    c_expr: String,
    rust: u64,
}

macro_rules! size {
    ($c:literal, $t:ty) => {
        Check { c_expr: format!("sizeof(struct {})", $c), rust: size_of::<$t>() as u64 }
    };
}

macro_rules! offset {
    ($c:literal, $t:ty, $field:ident) => {
        Check {
            c_expr: format!("offsetof(struct {}, {})", $c, stringify!($field)),
            rust: offset_of!($t, $field) as u64,
        }
    };
}

/// A constant whose Rust name is its C name.
macro_rules! constant {
    ($module:ident :: $name:ident) => {
        Check { c_expr: stringify!($name).to_string(), rust: $module::$name as u64 }
    };
}

fn struct_checks() -> Vec<Check> {
    vec![
        size!("evtchn_alloc_unbound", EvtchnAllocUnbound),
        offset!("evtchn_alloc_unbound", EvtchnAllocUnbound, dom),
        offset!("evtchn_alloc_unbound", EvtchnAllocUnbound, remote_dom),
        offset!("evtchn_alloc_unbound", EvtchnAllocUnbound, port),
        size!("evtchn_bind_interdomain", EvtchnBindInterdomain),
        offset!("evtchn_bind_interdomain", EvtchnBindInterdomain, remote_dom),
        offset!("evtchn_bind_interdomain", EvtchnBindInterdomain, remote_port),
        offset!("evtchn_bind_interdomain", EvtchnBindInterdomain, local_port),
        size!("evtchn_bind_virq", EvtchnBindVirq),
        offset!("evtchn_bind_virq", EvtchnBindVirq, virq),
        offset!("evtchn_bind_virq", EvtchnBindVirq, vcpu),
        offset!("evtchn_bind_virq", EvtchnBindVirq, port),
        size!("evtchn_bind_pirq", EvtchnBindPirq),
        offset!("evtchn_bind_pirq", EvtchnBindPirq, pirq),
        offset!("evtchn_bind_pirq", EvtchnBindPirq, flags),
        offset!("evtchn_bind_pirq", EvtchnBindPirq, port),
        size!("evtchn_bind_ipi", EvtchnBindIpi),
        offset!("evtchn_bind_ipi", EvtchnBindIpi, vcpu),
        offset!("evtchn_bind_ipi", EvtchnBindIpi, port),
        size!("evtchn_close", EvtchnClose),
        offset!("evtchn_close", EvtchnClose, port),
        size!("evtchn_send", EvtchnSend),
        offset!("evtchn_send", EvtchnSend, port),
        size!("evtchn_status", EvtchnStatus),
        offset!("evtchn_status", EvtchnStatus, dom),
        offset!("evtchn_status", EvtchnStatus, port),
        offset!("evtchn_status", EvtchnStatus, status),
        offset!("evtchn_status", EvtchnStatus, vcpu),
        offset!("evtchn_status", EvtchnStatus, u),
        Check {
            c_expr: "offsetof(struct evtchn_status, u.unbound.dom)".into(),
            rust: (offset_of!(EvtchnStatus, u) + EVTCHN_STATUS_U_DOM_OFFSET) as u64,
        },
        Check {
            c_expr: "offsetof(struct evtchn_status, u.interdomain.dom)".into(),
            rust: (offset_of!(EvtchnStatus, u) + EVTCHN_STATUS_U_DOM_OFFSET) as u64,
        },
        Check {
            c_expr: "offsetof(struct evtchn_status, u.interdomain.port)".into(),
            rust: (offset_of!(EvtchnStatus, u) + EVTCHN_STATUS_U_INTERDOMAIN_PORT_OFFSET) as u64,
        },
        Check { c_expr: "offsetof(struct evtchn_status, u.virq)".into(), rust: offset_of!(EvtchnStatus, u) as u64 },
        Check { c_expr: "offsetof(struct evtchn_status, u.pirq)".into(), rust: offset_of!(EvtchnStatus, u) as u64 },
        size!("evtchn_bind_vcpu", EvtchnBindVcpu),
        offset!("evtchn_bind_vcpu", EvtchnBindVcpu, port),
        offset!("evtchn_bind_vcpu", EvtchnBindVcpu, vcpu),
        size!("evtchn_unmask", EvtchnUnmask),
        offset!("evtchn_unmask", EvtchnUnmask, port),
        size!("evtchn_reset", EvtchnReset),
        offset!("evtchn_reset", EvtchnReset, dom),
        size!("evtchn_init_control", EvtchnInitControl),
        offset!("evtchn_init_control", EvtchnInitControl, control_gfn),
        offset!("evtchn_init_control", EvtchnInitControl, offset),
        offset!("evtchn_init_control", EvtchnInitControl, vcpu),
        offset!("evtchn_init_control", EvtchnInitControl, link_bits),
        size!("evtchn_expand_array", EvtchnExpandArray),
        offset!("evtchn_expand_array", EvtchnExpandArray, array_gfn),
        size!("evtchn_set_priority", EvtchnSetPriority),
        offset!("evtchn_set_priority", EvtchnSetPriority, port),
        offset!("evtchn_set_priority", EvtchnSetPriority, priority),
        size!("vcpu_register_vcpu_info", VcpuRegisterVcpuInfo),
        offset!("vcpu_register_vcpu_info", VcpuRegisterVcpuInfo, mfn),
        offset!("vcpu_register_vcpu_info", VcpuRegisterVcpuInfo, offset),
        offset!("vcpu_register_vcpu_info", VcpuRegisterVcpuInfo, rsvd),
        size!("vcpu_set_singleshot_timer", VcpuSetSingleshotTimer),
        offset!("vcpu_set_singleshot_timer", VcpuSetSingleshotTimer, timeout_abs_ns),
        offset!("vcpu_set_singleshot_timer", VcpuSetSingleshotTimer, flags),
        size!("sched_shutdown", SchedShutdown),
        offset!("sched_shutdown", SchedShutdown, reason),
        size!("sched_poll", SchedPoll),
        offset!("sched_poll", SchedPoll, ports),
        offset!("sched_poll", SchedPoll, nr_ports),
        offset!("sched_poll", SchedPoll, timeout),
        size!("xen_hvm_param", XenHvmParam),
        offset!("xen_hvm_param", XenHvmParam, domid),
        offset!("xen_hvm_param", XenHvmParam, pad),
        offset!("xen_hvm_param", XenHvmParam, index),
        offset!("xen_hvm_param", XenHvmParam, value),
        size!("xen_hvm_evtchn_upcall_vector", XenHvmEvtchnUpcallVector),
        offset!("xen_hvm_evtchn_upcall_vector", XenHvmEvtchnUpcallVector, vcpu),
        offset!("xen_hvm_evtchn_upcall_vector", XenHvmEvtchnUpcallVector, vector),
        size!("xen_add_to_physmap", XenAddToPhysmap),
        offset!("xen_add_to_physmap", XenAddToPhysmap, domid),
        offset!("xen_add_to_physmap", XenAddToPhysmap, size),
        offset!("xen_add_to_physmap", XenAddToPhysmap, space),
        offset!("xen_add_to_physmap", XenAddToPhysmap, idx),
        offset!("xen_add_to_physmap", XenAddToPhysmap, gpfn),
        size!("xen_feature_info", XenFeatureInfo),
        offset!("xen_feature_info", XenFeatureInfo, submap_idx),
        offset!("xen_feature_info", XenFeatureInfo, submap),
        size!("vcpu_time_info", VcpuTimeInfo),
        offset!("vcpu_time_info", VcpuTimeInfo, version),
        offset!("vcpu_time_info", VcpuTimeInfo, pad0),
        offset!("vcpu_time_info", VcpuTimeInfo, tsc_timestamp),
        offset!("vcpu_time_info", VcpuTimeInfo, system_time),
        offset!("vcpu_time_info", VcpuTimeInfo, tsc_to_system_mul),
        offset!("vcpu_time_info", VcpuTimeInfo, tsc_shift),
        offset!("vcpu_time_info", VcpuTimeInfo, flags),
        offset!("vcpu_time_info", VcpuTimeInfo, pad1),
        size!("arch_vcpu_info", ArchVcpuInfo),
        offset!("arch_vcpu_info", ArchVcpuInfo, cr2),
        offset!("arch_vcpu_info", ArchVcpuInfo, pad),
        size!("vcpu_info", VcpuInfo),
        offset!("vcpu_info", VcpuInfo, evtchn_upcall_pending),
        offset!("vcpu_info", VcpuInfo, evtchn_upcall_mask),
        offset!("vcpu_info", VcpuInfo, evtchn_pending_sel),
        offset!("vcpu_info", VcpuInfo, arch),
        offset!("vcpu_info", VcpuInfo, time),
        size!("arch_shared_info", ArchSharedInfo),
        offset!("arch_shared_info", ArchSharedInfo, max_pfn),
        offset!("arch_shared_info", ArchSharedInfo, pfn_to_mfn_frame_list_list),
        offset!("arch_shared_info", ArchSharedInfo, nmi_reason),
        offset!("arch_shared_info", ArchSharedInfo, p2m_cr3),
        offset!("arch_shared_info", ArchSharedInfo, p2m_vaddr),
        offset!("arch_shared_info", ArchSharedInfo, p2m_generation),
        size!("shared_info", SharedInfo),
        offset!("shared_info", SharedInfo, vcpu_info),
        offset!("shared_info", SharedInfo, evtchn_pending),
        offset!("shared_info", SharedInfo, evtchn_mask),
        offset!("shared_info", SharedInfo, wc_version),
        offset!("shared_info", SharedInfo, wc_sec),
        offset!("shared_info", SharedInfo, wc_nsec),
        offset!("shared_info", SharedInfo, wc_sec_hi),
        offset!("shared_info", SharedInfo, arch),
        Check { c_expr: "sizeof(((struct shared_info *)0)->evtchn_pending)".into(), rust: (EVTCHN_WORDS * 8) as u64 },
        Check { c_expr: "sizeof(xen_ulong_t) * 8".into(), rust: u64::from(BITS_PER_EVTCHN_WORD) },
        Check {
            c_expr: "sizeof(((struct shared_info *)0)->vcpu_info) / sizeof(struct vcpu_info)".into(),
            rust: XEN_LEGACY_MAX_VCPUS as u64,
        },
    ]
}

fn constant_checks() -> Vec<Check> {
    let mut checks = vec![
        constant!(vcpu::VCPUOP_initialise),
        constant!(vcpu::VCPUOP_up),
        constant!(vcpu::VCPUOP_down),
        constant!(vcpu::VCPUOP_is_up),
        constant!(vcpu::VCPUOP_set_periodic_timer),
        constant!(vcpu::VCPUOP_stop_periodic_timer),
        constant!(vcpu::VCPUOP_set_singleshot_timer),
        constant!(vcpu::VCPUOP_stop_singleshot_timer),
        constant!(vcpu::VCPUOP_register_vcpu_info),
        constant!(vcpu::VCPU_SSHOTTMR_future),
        constant!(sched::SCHEDOP_yield),
        constant!(sched::SCHEDOP_block),
        constant!(sched::SCHEDOP_shutdown),
        constant!(sched::SCHEDOP_poll),
        constant!(sched::SCHEDOP_remote_shutdown),
        constant!(sched::SCHEDOP_shutdown_code),
        constant!(sched::SCHEDOP_watchdog),
        constant!(sched::SCHEDOP_pin_override),
        constant!(sched::SHUTDOWN_poweroff),
        constant!(sched::SHUTDOWN_reboot),
        constant!(sched::SHUTDOWN_suspend),
        constant!(sched::SHUTDOWN_crash),
        constant!(sched::SHUTDOWN_watchdog),
        constant!(sched::SHUTDOWN_soft_reset),
        constant!(sched::CONSOLEIO_write),
        constant!(sched::CONSOLEIO_read),
        constant!(hypercall::__HYPERVISOR_set_trap_table),
        constant!(hypercall::__HYPERVISOR_mmu_update),
        constant!(hypercall::__HYPERVISOR_set_gdt),
        constant!(hypercall::__HYPERVISOR_stack_switch),
        constant!(hypercall::__HYPERVISOR_set_callbacks),
        constant!(hypercall::__HYPERVISOR_fpu_taskswitch),
        constant!(hypercall::__HYPERVISOR_sched_op_compat),
        constant!(hypercall::__HYPERVISOR_platform_op),
        constant!(hypercall::__HYPERVISOR_set_debugreg),
        constant!(hypercall::__HYPERVISOR_get_debugreg),
        constant!(hypercall::__HYPERVISOR_update_descriptor),
        constant!(hypercall::__HYPERVISOR_memory_op),
        constant!(hypercall::__HYPERVISOR_multicall),
        constant!(hypercall::__HYPERVISOR_update_va_mapping),
        constant!(hypercall::__HYPERVISOR_set_timer_op),
        constant!(hypercall::__HYPERVISOR_event_channel_op_compat),
        constant!(hypercall::__HYPERVISOR_xen_version),
        constant!(hypercall::__HYPERVISOR_console_io),
        constant!(hypercall::__HYPERVISOR_physdev_op_compat),
        constant!(hypercall::__HYPERVISOR_grant_table_op),
        constant!(hypercall::__HYPERVISOR_vm_assist),
        constant!(hypercall::__HYPERVISOR_update_va_mapping_otherdomain),
        constant!(hypercall::__HYPERVISOR_iret),
        constant!(hypercall::__HYPERVISOR_vcpu_op),
        constant!(hypercall::__HYPERVISOR_set_segment_base),
        constant!(hypercall::__HYPERVISOR_mmuext_op),
        constant!(hypercall::__HYPERVISOR_xsm_op),
        constant!(hypercall::__HYPERVISOR_nmi_op),
        constant!(hypercall::__HYPERVISOR_sched_op),
        constant!(hypercall::__HYPERVISOR_callback_op),
        constant!(hypercall::__HYPERVISOR_xenoprof_op),
        constant!(hypercall::__HYPERVISOR_event_channel_op),
        constant!(hypercall::__HYPERVISOR_physdev_op),
        constant!(hypercall::__HYPERVISOR_hvm_op),
        constant!(hypercall::__HYPERVISOR_sysctl),
        constant!(hypercall::__HYPERVISOR_domctl),
        constant!(hypercall::__HYPERVISOR_kexec_op),
        constant!(hypercall::__HYPERVISOR_tmem_op),
        constant!(hypercall::__HYPERVISOR_argo_op),
        constant!(hypercall::__HYPERVISOR_xenpmu_op),
        constant!(hypercall::__HYPERVISOR_dm_op),
        constant!(hypercall::__HYPERVISOR_hypfs_op),
        constant!(hypercall::DOMID_FIRST_RESERVED),
        constant!(hypercall::DOMID_SELF),
        constant!(hypercall::DOMID_IO),
        constant!(hypercall::DOMID_XEN),
        constant!(hypercall::DOMID_COW),
        constant!(hypercall::DOMID_INVALID),
        constant!(hypercall::DOMID_IDLE),
        constant!(hypercall::DOMID_MASK),
        constant!(evtchn::EVTCHNOP_bind_interdomain),
        constant!(evtchn::EVTCHNOP_bind_virq),
        constant!(evtchn::EVTCHNOP_bind_pirq),
        constant!(evtchn::EVTCHNOP_close),
        constant!(evtchn::EVTCHNOP_send),
        constant!(evtchn::EVTCHNOP_status),
        constant!(evtchn::EVTCHNOP_alloc_unbound),
        constant!(evtchn::EVTCHNOP_bind_ipi),
        constant!(evtchn::EVTCHNOP_bind_vcpu),
        constant!(evtchn::EVTCHNOP_unmask),
        constant!(evtchn::EVTCHNOP_reset),
        constant!(evtchn::EVTCHNOP_init_control),
        constant!(evtchn::EVTCHNOP_expand_array),
        constant!(evtchn::EVTCHNOP_set_priority),
        constant!(evtchn::EVTCHNSTAT_closed),
        constant!(evtchn::EVTCHNSTAT_unbound),
        constant!(evtchn::EVTCHNSTAT_interdomain),
        constant!(evtchn::EVTCHNSTAT_pirq),
        constant!(evtchn::EVTCHNSTAT_virq),
        constant!(evtchn::EVTCHNSTAT_ipi),
        constant!(evtchn::BIND_PIRQ__WILL_SHARE),
        constant!(evtchn::EVTCHN_2L_NR_CHANNELS),
        constant!(evtchn::EVTCHN_FIFO_LINK_BITS),
        constant!(evtchn::EVTCHN_FIFO_NR_CHANNELS),
        constant!(evtchn::EVTCHN_FIFO_PRIORITY_MAX),
        constant!(evtchn::EVTCHN_FIFO_PRIORITY_DEFAULT),
        constant!(evtchn::EVTCHN_FIFO_PRIORITY_MIN),
        constant!(hvm::HVMOP_set_param),
        constant!(hvm::HVMOP_get_param),
        constant!(hvm::HVMOP_flush_tlbs),
        constant!(hvm::HVMOP_pagetable_dying),
        constant!(hvm::HVMOP_get_time),
        constant!(hvm::HVMOP_get_mem_type),
        constant!(hvm::HVMOP_set_evtchn_upcall_vector),
        constant!(hvm::HVMOP_guest_request_vm_event),
        constant!(hvm::HVMOP_altp2m),
        constant!(hvm::HVM_PARAM_CALLBACK_IRQ),
        constant!(hvm::HVM_PARAM_STORE_PFN),
        constant!(hvm::HVM_PARAM_STORE_EVTCHN),
        constant!(hvm::HVM_PARAM_PAE_ENABLED),
        constant!(hvm::HVM_PARAM_IOREQ_PFN),
        constant!(hvm::HVM_PARAM_BUFIOREQ_PFN),
        constant!(hvm::HVM_PARAM_VIRIDIAN),
        constant!(hvm::HVM_PARAM_TIMER_MODE),
        constant!(hvm::HVM_PARAM_HPET_ENABLED),
        constant!(hvm::HVM_PARAM_IDENT_PT),
        constant!(hvm::HVM_PARAM_DM_DOMAIN),
        constant!(hvm::HVM_PARAM_ACPI_S_STATE),
        constant!(hvm::HVM_PARAM_VM86_TSS),
        constant!(hvm::HVM_PARAM_VPT_ALIGN),
        constant!(hvm::HVM_PARAM_CONSOLE_PFN),
        constant!(hvm::HVM_PARAM_CONSOLE_EVTCHN),
        constant!(hvm::HVM_PARAM_ACPI_IOPORTS_LOCATION),
        constant!(hvm::HVM_PARAM_MEMORY_EVENT_CR0),
        constant!(hvm::HVM_PARAM_MEMORY_EVENT_CR3),
        constant!(hvm::HVM_PARAM_MEMORY_EVENT_CR4),
        constant!(hvm::HVM_PARAM_MEMORY_EVENT_INT3),
        constant!(hvm::HVM_PARAM_NESTEDHVM),
        constant!(hvm::HVM_PARAM_MEMORY_EVENT_SINGLE_STEP),
        constant!(hvm::HVM_PARAM_BUFIOREQ_EVTCHN),
        constant!(hvm::HVM_PARAM_PAGING_RING_PFN),
        constant!(hvm::HVM_PARAM_MONITOR_RING_PFN),
        constant!(hvm::HVM_PARAM_SHARING_RING_PFN),
        constant!(hvm::HVM_PARAM_MEMORY_EVENT_MSR),
        constant!(hvm::HVM_PARAM_TRIPLE_FAULT_REASON),
        constant!(hvm::HVM_PARAM_IOREQ_SERVER_PFN),
        constant!(hvm::HVM_PARAM_NR_IOREQ_SERVER_PAGES),
        constant!(hvm::HVM_PARAM_VM_GENERATION_ID_ADDR),
        constant!(hvm::HVM_PARAM_ALTP2M),
        constant!(hvm::HVM_PARAM_X87_FIP_WIDTH),
        constant!(hvm::HVM_PARAM_VM86_TSS_SIZED),
        constant!(hvm::HVM_PARAM_MCA_CAP),
        constant!(hvm::HVM_NR_PARAMS),
        constant!(hvm::HVM_PARAM_CALLBACK_IRQ_TYPE_MASK),
        constant!(hvm::HVM_PARAM_CALLBACK_TYPE_GSI),
        constant!(hvm::HVM_PARAM_CALLBACK_TYPE_PCI_INTX),
        constant!(hvm::HVM_PARAM_CALLBACK_TYPE_VECTOR),
        constant!(memory::XENMEM_increase_reservation),
        constant!(memory::XENMEM_decrease_reservation),
        constant!(memory::XENMEM_maximum_ram_page),
        constant!(memory::XENMEM_current_reservation),
        constant!(memory::XENMEM_maximum_reservation),
        constant!(memory::XENMEM_machphys_mfn_list),
        constant!(memory::XENMEM_populate_physmap),
        constant!(memory::XENMEM_add_to_physmap),
        constant!(memory::XENMEM_memory_map),
        constant!(memory::XENMEM_machine_memory_map),
        constant!(memory::XENMEM_exchange),
        constant!(memory::XENMEM_machphys_mapping),
        constant!(memory::XENMEM_set_memory_map),
        constant!(memory::XENMEM_maximum_gpfn),
        constant!(memory::XENMEM_remove_from_physmap),
        constant!(memory::XENMEM_add_to_physmap_batch),
        constant!(memory::XENMAPSPACE_shared_info),
        constant!(memory::XENMAPSPACE_grant_table),
        constant!(memory::XENMAPSPACE_gmfn),
        constant!(memory::XENMAPSPACE_gmfn_range),
        constant!(memory::XENMAPSPACE_gmfn_foreign),
        constant!(memory::XENMAPSPACE_dev_mmio),
        constant!(memory::XENMAPIDX_grant_table_status),
        constant!(version::XENVER_version),
        constant!(version::XENVER_extraversion),
        constant!(version::XENVER_compile_info),
        constant!(version::XENVER_capabilities),
        constant!(version::XENVER_changeset),
        constant!(version::XENVER_platform_parameters),
        constant!(version::XENVER_get_features),
        constant!(version::XENVER_pagesize),
        constant!(version::XENVER_guest_handle),
        constant!(version::XENVER_commandline),
        constant!(version::XENVER_build_id),
        constant!(version::XEN_EXTRAVERSION_LEN),
        constant!(version::XENFEAT_writable_page_tables),
        constant!(version::XENFEAT_writable_descriptor_tables),
        constant!(version::XENFEAT_auto_translated_physmap),
        constant!(version::XENFEAT_supervisor_mode_kernel),
        constant!(version::XENFEAT_pae_pgdir_above_4gb),
        constant!(version::XENFEAT_mmu_pt_update_preserve_ad),
        constant!(version::XENFEAT_highmem_assist),
        constant!(version::XENFEAT_gnttab_map_avail_bits),
        constant!(version::XENFEAT_hvm_callback_vector),
        constant!(version::XENFEAT_hvm_safe_pvclock),
        constant!(version::XENFEAT_hvm_pirqs),
        constant!(version::XENFEAT_dom0),
        constant!(version::XENFEAT_memory_op_vnode_supported),
        constant!(version::XENFEAT_ARM_SMCCC_supported),
        constant!(version::XENFEAT_linux_rsdp_unrestricted),
        constant!(version::XENFEAT_not_direct_mapped),
        constant!(version::XENFEAT_direct_mapped),
        constant!(version::XENFEAT_NR_SUBMAPS),
        constant!(virq::VIRQ_TIMER),
        constant!(virq::VIRQ_DEBUG),
        constant!(virq::VIRQ_CONSOLE),
        constant!(virq::VIRQ_DOM_EXC),
        constant!(virq::VIRQ_TBUF),
        constant!(virq::VIRQ_DEBUGGER),
        constant!(virq::VIRQ_XENOPROF),
        constant!(virq::VIRQ_CON_RING),
        constant!(virq::VIRQ_PCPU_STATE),
        constant!(virq::VIRQ_MEM_EVENT),
        constant!(virq::VIRQ_ARGO),
        constant!(virq::VIRQ_ENOMEM),
        constant!(virq::VIRQ_XENPMU),
        constant!(virq::VIRQ_ARCH_0),
        constant!(virq::VIRQ_ARCH_1),
        constant!(virq::VIRQ_ARCH_2),
        constant!(virq::VIRQ_ARCH_3),
        constant!(virq::VIRQ_ARCH_4),
        constant!(virq::VIRQ_ARCH_5),
        constant!(virq::VIRQ_ARCH_6),
        constant!(virq::VIRQ_ARCH_7),
        constant!(virq::NR_VIRQS),
        constant!(cpuid::XEN_CPUID_FIRST_LEAF),
        constant!(cpuid::XEN_CPUID_SIGNATURE_EBX),
        constant!(cpuid::XEN_CPUID_SIGNATURE_ECX),
        constant!(cpuid::XEN_CPUID_SIGNATURE_EDX),
        constant!(cpuid::XEN_CPUID_MAX_NUM_LEAVES),
        constant!(cpuid::XEN_HVM_CPUID_APIC_ACCESS_VIRT),
        constant!(cpuid::XEN_HVM_CPUID_X2APIC_VIRT),
        constant!(cpuid::XEN_HVM_CPUID_IOMMU_MAPPINGS),
        constant!(cpuid::XEN_HVM_CPUID_VCPU_ID_PRESENT),
        constant!(cpuid::XEN_HVM_CPUID_DOMID_PRESENT),
        constant!(cpuid::XEN_HVM_CPUID_EXT_DEST_ID),
        constant!(cpuid::XEN_HVM_CPUID_UPCALL_VECTOR),
        constant!(shared_info_consts::XEN_LEGACY_MAX_VCPUS),
        constant!(shared_info_consts::XEN_PVCLOCK_TSC_STABLE_BIT),
        constant!(shared_info_consts::XEN_PVCLOCK_GUEST_STOPPED),
        Check { c_expr: "XEN_CPUID_LEAF(4)".into(), rust: u64::from(cpuid::xen_cpuid_leaf(4)) },
    ];
    // Xen's errno.h names its values XEN_<name>.
    for (name, value) in errno::ALL {
        checks.push(Check { c_expr: format!("XEN_{name}"), rust: *value as u64 });
    }
    checks
}

mod shared_info_consts {
    pub use xevtchn_common::xen::shared_info::{
        XEN_LEGACY_MAX_VCPUS, XEN_PVCLOCK_GUEST_STOPPED, XEN_PVCLOCK_TSC_STABLE_BIT,
    };
}

fn c_program(checks: &[Check]) -> String {
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n\
         #include <xen/xen.h>\n#include <xen/event_channel.h>\n#include <xen/hvm/hvm_op.h>\n\
         #include <xen/hvm/params.h>\n#include <xen/memory.h>\n#include <xen/sched.h>\n#include <xen/vcpu.h>\n#include <xen/version.h>\n\
         #include <xen/features.h>\n#include <xen/errno.h>\n#include <xen/arch-x86/cpuid.h>\n\
         int main(void) {\n",
    );
    for (index, check) in checks.iter().enumerate() {
        writeln!(c, "    printf(\"{index} %llu\\n\", (unsigned long long)({}));", check.c_expr).unwrap();
    }
    c.push_str("    return 0;\n}\n");
    c
}

fn work_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("xen-headers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory under CARGO_TARGET_TMPDIR");
    dir
}

/// Compiles and runs the C program; returns what it printed, by index.
fn values_from_headers(checks: &[Check]) -> BTreeMap<usize, u64> {
    assert!(
        std::path::Path::new("/usr/include/xen/xen.h").exists(),
        "/usr/include/xen/xen.h is missing: {INSTALL_HINT}"
    );
    let dir = work_dir();
    let source = dir.join("xen_abi.c");
    let binary = dir.join("xen_abi");
    std::fs::write(&source, c_program(checks)).expect("write the C program");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    // __XEN_TOOLS__ exposes the deprecated HVM_PARAM_* numbers that Xen
    // still rejects with -EINVAL; it changes no struct layout used here.
    let compile = Command::new(&compiler)
        .args(["-std=gnu11", "-Wall", "-Werror", "-D__XEN_TOOLS__", "-o"])
        .arg(&binary)
        .arg(&source)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}: {INSTALL_HINT}"));
    assert!(
        compile.status.success(),
        "compiling against Xen's headers failed ({INSTALL_HINT}):\n{}",
        String::from_utf8_lossy(&compile.stderr)
    );
    let run = Command::new(&binary).output().expect("run the compiled C program");
    assert!(run.status.success(), "the C program failed: {:?}", run.status);
    let stdout = String::from_utf8(run.stdout).expect("C program output is ASCII");
    let _ = std::fs::remove_dir_all(&dir);
    stdout
        .lines()
        .map(|line| {
            let (index, value) = line.split_once(' ').expect("'<index> <value>' lines");
            (index.parse().expect("index"), value.parse().expect("value"))
        })
        .collect()
}

#[test]
fn abi_mirror_matches_xen_public_headers() {
    let checks: Vec<Check> = struct_checks().into_iter().chain(constant_checks()).collect();
    let from_c = values_from_headers(&checks);
    assert_eq!(from_c.len(), checks.len(), "the C program printed one line per check");
    let mismatches: Vec<String> = checks
        .iter()
        .enumerate()
        .filter(|(index, check)| from_c[index] != check.rust)
        .map(|(index, check)| format!("{}: C says {}, Rust says {}", check.c_expr, from_c[&index], check.rust))
        .collect();
    assert!(mismatches.is_empty(), "the ABI mirror disagrees with Xen's headers:\n{}", mismatches.join("\n"));
    println!("{} sizes, offsets and constants match Xen's headers", checks.len());
}
