/*
 * pvh-test: a PVH kernel that checks, as any Xen guest would see it, what
 * xevtchn promises of its Xen: start_info, the memory map, xen_version,
 * shared_info and its pvclock, the HVM callback parameter, event channels
 * and SCHEDOP_poll. One console line per check, "ok - ..." or
 * "FAIL - ...", then SCHEDOP_shutdown: poweroff if every check passed,
 * crash otherwise. The command line "shutdown=crash" crashes at once.
 *
 * It runs on one vCPU with interrupts disabled throughout: every port is
 * masked, so events are observed in shared_info, never delivered.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "console.h"
#include "hypercall.h"
#include "lib.h"
#include "smp.h"
#include "traps.h"

#define NS_PER_MS 1000000ULL
#define NS_PER_US 1000ULL
#define NR_PORTS EVTCHN_2L_NR_CHANNELS /* 4096 with 64-bit words (event_channel.h) */
#define BITS_PER_WORD (sizeof(xen_ulong_t) * 8)

/* Our page tables (entry.S) map the first 1 GiB, identity. */
#define MAPPED_END (1ULL << 30)

/* link.ld: the kernel's physical extent. */
extern char __kernel_start[], __kernel_end[];

void kmain(const struct hvm_start_info *si);

static unsigned int failures;

/* --- Reporting ------------------------------------------------------- */

/* One check: "ok - MESSAGE" or "FAIL - MESSAGE". */
static bool __attribute__((format(printf, 2, 3))) report(bool ok, const char *fmt, ...)
{
    char message[200];
    va_list ap;

    va_start(ap, fmt);
    vformat(message, sizeof(message), fmt, ap);
    va_end(ap);
    printk("%s - %s\n", ok ? "ok" : "FAIL", message);
    if (!ok)
        failures++;
    return ok;
}

/* A hypercall result as Xen's name ("-EINVAL") or as a number. */
static const char *rc_str(long rc, char buf[24])
{
    const char *name = xen_errno_name(rc);

    if (name)
        return name;
    snformat(buf, 24, "%ld", rc);
    return buf;
}

/* "ok - WHAT" or "FAIL - WHAT: got GOT want WANT". */
static bool expect_rc(const char *what, long got, long want)
{
    char g[24], w[24];

    if (got == want)
        return report(true, "%s", what);
    return report(false, "%s: got %s want %s", what, rc_str(got, g), rc_str(want, w));
}

static bool mapped(uint64_t paddr, uint64_t len)
{
    return paddr < MAPPED_END && len <= MAPPED_END - paddr;
}

static __attribute__((noreturn)) void halt_forever(void)
{
    for (;;)
        asm volatile("cli; hlt");
}

static __attribute__((noreturn)) void shutdown(unsigned int reason)
{
    xen_shutdown(reason);
    printk("FAIL - shutdown returned\n");
    halt_forever();
}

/* --- start_info: command line and memory map ------------------------ */

/* False if start_info cannot be trusted (wrong magic or version 0). */
static bool check_start_info(const struct hvm_start_info *si)
{
    if (!report(si->magic == XEN_HVM_START_MAGIC_VALUE, "start_info at %p: magic %#x", si, si->magic))
        return false;
    return report(si->version >= 1, "start_info version %u (>= 1: has a memory map)", si->version);
}

/* "console-input" on the command line: expect a line on the PV console. */
static bool console_input;
/*
 * "vcpus=N" on the command line: the kernel has N vCPUs (a real kernel
 * learns that from ACPI's MADT). 0: not given.
 */
static unsigned int nr_vcpus;

/* Echoes the command line; "shutdown=crash" crashes the domain at once. */
static void handle_cmdline(const struct hvm_start_info *si)
{
    char line[200];

    if (!report(si->cmdline_paddr != 0 && mapped(si->cmdline_paddr, sizeof(line)), "start_info cmdline_paddr %#lx",
                (unsigned long)si->cmdline_paddr))
        return;
    const char *cmdline = (const char *)(uintptr_t)si->cmdline_paddr;
    size_t len = strnlen(cmdline, sizeof(line) - 1);

    memcpy(line, cmdline, len);
    line[len] = 0;
    printk("cmdline: %s\n", line);
    console_input = str_contains(line, "console-input");
    const char *vcpus = str_find(line, "vcpus=");
    if (vcpus)
        nr_vcpus = (unsigned int)str_number(vcpus + 6);
    if (str_contains(line, "shutdown=crash")) {
        printk("pvh-test: crashing on request\n");
        shutdown(SHUTDOWN_crash);
    }
}

/* start_info's memory map, NULL if absent or implausible (over 128 entries). */
static const struct hvm_memmap_table_entry *memmap(const struct hvm_start_info *si)
{
    uint64_t size = (uint64_t)si->memmap_entries * sizeof(struct hvm_memmap_table_entry);

    if (si->memmap_entries == 0 || si->memmap_entries > 128 || si->memmap_paddr == 0 ||
        !mapped(si->memmap_paddr, size))
        return NULL;
    return (const struct hvm_memmap_table_entry *)(uintptr_t)si->memmap_paddr;
}

static void check_memmap(const struct hvm_start_info *si)
{
    const struct hvm_memmap_table_entry *map = memmap(si);
    uint64_t start = (uintptr_t)__kernel_start, end = (uintptr_t)__kernel_end;
    bool covered = false;

    if (!report(map != NULL, "start_info memmap: %u entries at %#lx", si->memmap_entries,
                (unsigned long)si->memmap_paddr))
        return;
    for (uint32_t i = 0; i < si->memmap_entries; i++) {
        printk("# memmap[%u]: addr %#lx size %#lx type %u\n", i, (unsigned long)map[i].addr,
               (unsigned long)map[i].size, map[i].type);
        if (map[i].type == XEN_HVM_MEMMAP_TYPE_RAM && map[i].addr == 0 && map[i].size >= end)
            covered = true;
    }
    report(covered, "start_info memmap: RAM from 0 covers the kernel [%#lx, %#lx)", (unsigned long)start,
           (unsigned long)end);
}

/* Xen's e820 ABI (XENMEM_memory_map's buffer): not in the public headers. */
struct e820entry {
    uint64_t addr, size;
    uint32_t type;
} __attribute__((packed));
_Static_assert(sizeof(struct e820entry) == 20, "Xen's e820 entries are 20 bytes");

/* XENMEM_memory_map (memory.h) returns start_info's memory map. */
static void check_memory_map_op(const struct hvm_start_info *si)
{
    static struct e820entry e820[16];
    const struct hvm_memmap_table_entry *map = memmap(si);
    struct xen_memory_map mm = { .nr_entries = 16 };
    uint32_t i = 0;
    long rc;

    memset(e820, 0xff, sizeof(e820));
    set_xen_guest_handle(mm.buffer, e820);
    rc = HYPERVISOR_memory_op(XENMEM_memory_map, &mm);
    if (!expect_rc("XENMEM_memory_map", rc, 0))
        return;
    if (!report(map && mm.nr_entries <= 16 && mm.nr_entries == si->memmap_entries,
                "XENMEM_memory_map: %u entries, as start_info's %u", mm.nr_entries, si->memmap_entries))
        return;
    while (i < mm.nr_entries && e820[i].addr == map[i].addr && e820[i].size == map[i].size &&
           e820[i].type == map[i].type)
        i++;
    if (i == mm.nr_entries)
        report(true, "XENMEM_memory_map: every entry equals start_info's");
    else
        report(false, "XENMEM_memory_map: entry %u is %#lx+%#lx type %u, start_info's %#lx+%#lx type %u", i,
               (unsigned long)e820[i].addr, (unsigned long)e820[i].size, e820[i].type, (unsigned long)map[i].addr,
               (unsigned long)map[i].size, map[i].type);
}

/* --- xen_version ------------------------------------------------------ */

static void check_xen_version(void)
{
    static xen_capabilities_info_t caps;
    static xen_changeset_info_t changeset;
    static xen_commandline_t commandline;
    struct xen_compile_info compile_info;
    struct xen_platform_parameters params = { .virt_start = 0 };
    struct xen_feature_info features = { .submap_idx = 0 };
    xen_domain_handle_t handle;
    char buf[24];
    long rc;

    rc = HYPERVISOR_xen_version(XENVER_version, NULL);
    report(rc >= 0x40000, "XENVER_version: %ld.%ld (4.x or later)", rc >> 16, rc & 0xffff);

    rc = HYPERVISOR_xen_version(XENVER_get_features, &features);
    expect_rc("XENVER_get_features(0)", rc, 0);
    report(rc == 0 && (features.submap & (1u << XENFEAT_auto_translated_physmap)),
           "XENVER_get_features: submap 0 = %#x has auto_translated_physmap", features.submap);
    report(rc == 0 && !(features.submap & (1u << XENFEAT_hvm_callback_vector)),
           "XENVER_get_features: submap 0 = %#x lacks hvm_callback_vector", features.submap);

    expect_rc("XENVER_pagesize is 4096", HYPERVISOR_xen_version(XENVER_pagesize, NULL), 4096);

    rc = HYPERVISOR_xen_version(XENVER_capabilities, caps);
    caps[sizeof(caps) - 1] = 0;
    report(rc == 0 && str_contains(caps, "hvm-3.0-x86_64"), "XENVER_capabilities: %s \"%s\"", rc_str(rc, buf),
           caps);

    expect_rc("XENVER_compile_info", HYPERVISOR_xen_version(XENVER_compile_info, &compile_info), 0);
    expect_rc("XENVER_changeset", HYPERVISOR_xen_version(XENVER_changeset, changeset), 0);
    rc = HYPERVISOR_xen_version(XENVER_platform_parameters, &params);
    report(rc == 0, "XENVER_platform_parameters: %s, virt_start %#lx", rc_str(rc, buf), params.virt_start);
    expect_rc("XENVER_guest_handle", HYPERVISOR_xen_version(XENVER_guest_handle, handle), 0);

    rc = HYPERVISOR_xen_version(XENVER_commandline, commandline);
    report(rc == 0 || rc == -XEN_EPERM, "XENVER_commandline: %s (0 or -EPERM)", rc_str(rc, buf));

    expect_rc("xen_version(0x7fff), an unknown command", HYPERVISOR_xen_version(0x7fff, NULL), -XEN_ENOSYS);
}

/* --- shared_info and its pvclock -------------------------------------- */

/* A page of our own .bss that Xen's shared_info replaces (add_to_physmap). */
static union {
    struct shared_info info;
    uint8_t bytes[4096];
} shared_page __attribute__((aligned(4096)));
_Static_assert(sizeof(struct shared_info) <= 4096, "shared_info fits one page");

static volatile struct shared_info *map_shared_info(void)
{
    struct xen_add_to_physmap xatp = {
        .domid = DOMID_SELF,
        .space = XENMAPSPACE_shared_info,
        .idx = 0,
        .gpfn = (uintptr_t)&shared_page >> 12,
    };
    char what[80];

    snformat(what, sizeof(what), "XENMEM_add_to_physmap(shared_info) at gpfn %#lx", (unsigned long)xatp.gpfn);
    if (!expect_rc(what, HYPERVISOR_memory_op(XENMEM_add_to_physmap, &xatp), 0))
        return NULL;
    return &shared_page.info;
}

/* Linux masks every port at boot: no event is ever delivered, only seen. */
static void mask_all_ports(volatile struct shared_info *s)
{
    for (unsigned int i = 0; i < NR_PORTS / BITS_PER_WORD; i++)
        s->evtchn_mask[i] = ~(xen_ulong_t)0;
}

static void mask_port(volatile struct shared_info *s, evtchn_port_t port)
{
    __atomic_or_fetch(&s->evtchn_mask[port / BITS_PER_WORD], (xen_ulong_t)1 << (port % BITS_PER_WORD),
                      __ATOMIC_SEQ_CST);
}

static bool port_pending(volatile struct shared_info *s, evtchn_port_t port)
{
    return s->evtchn_pending[port / BITS_PER_WORD] & ((xen_ulong_t)1 << (port % BITS_PER_WORD));
}

static const volatile struct vcpu_time_info *pvclock;

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    asm volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* Xen system time in ns, by xen.h's formula for struct vcpu_time_info. */
static uint64_t system_time_ns(void)
{
    uint64_t ns = 0;

    /* A seqlock: retry while the hypervisor updates (odd or changed version). */
    for (int tries = 0; tries < 1000; tries++) {
        uint32_t version = pvclock->version;
        uint64_t delta = rdtsc() - pvclock->tsc_timestamp;
        int8_t shift = pvclock->tsc_shift;

        delta = shift >= 0 ? delta << shift : delta >> -shift;
        ns = pvclock->system_time + (uint64_t)(((unsigned __int128)delta * pvclock->tsc_to_system_mul) >> 32);
        if (!(version & 1) && version == pvclock->version)
            break;
    }
    return ns;
}

/* True if the pvclock can time SCHEDOP_poll. */
static bool check_pvclock(volatile struct shared_info *s)
{
    uint32_t version;
    uint64_t t0, t1, spin_end;

    pvclock = &s->vcpu_info[0].time;
    version = pvclock->version;
    report(!(version & 1), "pvclock version %u is even", version);
    if (!report(pvclock->tsc_to_system_mul != 0, "pvclock tsc_to_system_mul %u (tsc_shift %d) is not 0",
                pvclock->tsc_to_system_mul, pvclock->tsc_shift))
        return false;
    t0 = system_time_ns();
    for (spin_end = rdtsc() + 10000000; rdtsc() < spin_end;)
        asm volatile("pause");
    t1 = system_time_ns();
    report(t0 > 0, "pvclock system time %lu ns is > 0", (unsigned long)t0);
    return report(t1 > t0, "pvclock system time advances over a busy loop: %ld ns", (long)(t1 - t0)) &&
           t0 > 0;
}

/* --- HVM callback parameter ------------------------------------------- */

static long set_callback_irq(uint64_t value)
{
    struct xen_hvm_param param = { .domid = DOMID_SELF, .index = HVM_PARAM_CALLBACK_IRQ, .value = value };

    return HYPERVISOR_hvm_op(HVMOP_set_param, &param);
}

/* Without KVM's Xen support there is no vector callback; a GSI works. */
static void check_callback_param(void)
{
    long rc = set_callback_irq((uint64_t)HVM_PARAM_CALLBACK_TYPE_VECTOR << 56 | 0xf3);
    char buf[24];

    report(rc < 0, "HVMOP_set_param(CALLBACK_IRQ, vector 0xf3) is refused: %s", rc_str(rc, buf));
    rc = set_callback_irq((uint64_t)HVM_PARAM_CALLBACK_TYPE_GSI << 56 | 10);
    expect_rc("HVMOP_set_param(CALLBACK_IRQ, GSI 10)", rc, 0);
}

/* --- Event channels ---------------------------------------------------- */

static long alloc_unbound(evtchn_port_t *port)
{
    struct evtchn_alloc_unbound alloc = { .dom = DOMID_SELF, .remote_dom = DOMID_SELF };
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &alloc);

    *port = alloc.port;
    return rc;
}

static long close_port(evtchn_port_t port)
{
    struct evtchn_close close = { .port = port };

    return HYPERVISOR_event_channel_op(EVTCHNOP_close, &close);
}

/* The 2-level ABI has 4096 ports and port 0 is reserved: 4095 allocations. */
/*
 * alloc_unbound until -ENOSPC: every port from 1 to 4095 must then be in
 * use, the ones allocated here and those the toolstack had (the PV
 * console's, HVM_PARAM_CONSOLE_EVTCHN).
 */
static void check_port_exhaustion(void)
{
    static uint64_t allocated[NR_PORTS / 64];
    struct xen_hvm_param console = { .domid = DOMID_SELF, .index = HVM_PARAM_CONSOLE_EVTCHN };
    unsigned int count = 0, close_failures = 0, preset = 0;
    bool distinct = true;
    evtchn_port_t port;
    char buf[24];
    long rc = 0;

    if (HYPERVISOR_hvm_op(HVMOP_get_param, &console) == 0 && console.value > 0 && console.value < NR_PORTS) {
        allocated[console.value / 64] |= 1ULL << (console.value % 64);
        preset = 1;
    }
    while (count < NR_PORTS) {
        rc = alloc_unbound(&port);
        if (rc < 0)
            break;
        if (port == 0 || port >= NR_PORTS || (allocated[port / 64] & (1ULL << (port % 64))))
            distinct = false;
        else
            allocated[port / 64] |= 1ULL << (port % 64);
        count++;
    }
    if (rc == -XEN_ENOSPC && count + preset == NR_PORTS - 1 && distinct)
        report(true, "alloc_unbound until -ENOSPC: %u ports, %u the toolstack's", count + preset, preset);
    else
        report(false,
               "alloc_unbound until -ENOSPC: got %u ports (%s) besides the toolstack's %u, then %s; want 1..4095 "
               "all in use, then -ENOSPC",
               count, distinct ? "distinct, in 1..4095" : "not distinct or out of 1..4095", preset, rc_str(rc, buf));

    for (port = 1; port < NR_PORTS; port++)
        if ((allocated[port / 64] & (1ULL << (port % 64))) && port != console.value && close_port(port) != 0)
            close_failures++;
    report(close_failures == 0, "EVTCHNOP_close of every allocated port: %u failed", close_failures);
}

static long poll_ports(evtchn_port_t *ports, unsigned int nr_ports, uint64_t timeout)
{
    struct sched_poll poll = { .nr_ports = nr_ports, .timeout = timeout };

    set_xen_guest_handle(poll.ports, ports);
    return HYPERVISOR_sched_op(SCHEDOP_poll, &poll);
}

/*
 * A poll on `port` with a 20 ms timeout: returns the ns it took. The
 * timeout is absolute Xen system time (sched.h), the pvclock's.
 */
static uint64_t timed_poll(evtchn_port_t port, long *rc)
{
    uint64_t start = system_time_ns();

    *rc = poll_ports(&port, 1, start + 20 * NS_PER_MS);
    return system_time_ns() - start;
}

/* A deadline in the past (or 20 ms ahead): a poll that wrongly blocks ends. */
static uint64_t error_poll_timeout(bool have_clock)
{
    return have_clock ? system_time_ns() + 20 * NS_PER_MS : 1;
}

/* SCHEDOP_poll's argument checks (Xen's do_poll). */
static void check_poll_errors(evtchn_port_t port, bool have_clock)
{
    static evtchn_port_t many[129];
    evtchn_port_t beyond = NR_PORTS;

    for (unsigned int i = 0; i < 129; i++)
        many[i] = port;
    expect_rc("SCHEDOP_poll with 129 ports is -EINVAL", poll_ports(many, 129, error_poll_timeout(have_clock)),
              -XEN_EINVAL);
    expect_rc("SCHEDOP_poll on port 4096 is -EINVAL", poll_ports(&beyond, 1, error_poll_timeout(have_clock)),
              -XEN_EINVAL);
    expect_rc("SCHEDOP_poll with an unmapped ports pointer is -EFAULT",
              poll_ports((evtchn_port_t *)0x7ff00000000UL, 1, error_poll_timeout(have_clock)), -XEN_EFAULT);
}

/*
 * Port a (unbound, remote DOMID_SELF) and port b bound to it: a send on b
 * makes a pending. Poll on a times out before, returns at once after.
 */
/* Sends made at CPL0 in a row: on xevtchn's bpf backend each should stay
 * in the kernel (the VMM's report counts them). */
#define FLOOD_SENDS 2000

static void flood(evtchn_port_t port)
{
    struct evtchn_send send = { .port = port };
    unsigned int failed = 0;

    for (unsigned int i = 0; i < FLOOD_SENDS; i++)
        if (HYPERVISOR_event_channel_op(EVTCHNOP_send, &send) != 0)
            failed++;
    report(failed == 0, "flood: %u sends on port %u, %u failed", FLOOD_SENDS, port, failed);
}

static void check_loopback_poll(volatile struct shared_info *s, bool have_clock)
{
    struct evtchn_bind_interdomain bind = { .remote_dom = DOMID_SELF };
    struct evtchn_send send;
    evtchn_port_t a, b;
    uint64_t took;
    char buf[24];
    long rc;

    if (!expect_rc("EVTCHNOP_alloc_unbound (port a)", alloc_unbound(&a), 0))
        return;
    mask_port(s, a);
    bind.remote_port = a;
    rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &bind);
    if (!expect_rc("EVTCHNOP_bind_interdomain to port a (port b)", rc, 0))
        return;
    b = bind.local_port;
    mask_port(s, b);
    printk("# loopback: port a = %u, port b = %u\n", a, b);
    report(!port_pending(s, a), "port a is not pending before any send");

    if (have_clock) {
        took = timed_poll(a, &rc);
        /* 100 us of slack for the pvclock's own rounding against the host's clock. */
        report(rc == 0 && took + 100 * NS_PER_US >= 20 * NS_PER_MS && took < 2000 * NS_PER_MS,
               "SCHEDOP_poll on idle port a times out after 20 ms: %s after %lu us", rc_str(rc, buf),
               (unsigned long)(took / NS_PER_US));
    }

    send.port = b;
    expect_rc("EVTCHNOP_send on port b", HYPERVISOR_event_channel_op(EVTCHNOP_send, &send), 0);
    report(port_pending(s, a), "the send on b made port a pending in shared_info");
    flood(b);

    if (have_clock) {
        took = timed_poll(a, &rc);
        report(rc == 0 && took < 10 * NS_PER_MS, "SCHEDOP_poll on pending port a returns at once: %s after %lu us",
               rc_str(rc, buf), (unsigned long)(took / NS_PER_US));
    }

    check_poll_errors(a, have_clock);
    expect_rc("EVTCHNOP_close port b", close_port(b), 0);
    expect_rc("EVTCHNOP_close port a", close_port(a), 0);
}

/* --- Timers: VIRQ_TIMER from the singleshot timer ----------------------- */

static void clear_pending(volatile struct shared_info *s, evtchn_port_t port)
{
    __atomic_and_fetch(&s->evtchn_pending[port / BITS_PER_WORD], ~((xen_ulong_t)1 << (port % BITS_PER_WORD)),
                       __ATOMIC_SEQ_CST);
}

/*
 * Waits (SCHEDOP_poll, 1 s at most) for the timer's VIRQ on `port`, armed
 * `delay` ns ahead by `arm`; reports how long it took.
 */
static void expect_timer_virq(volatile struct shared_info *s, evtchn_port_t port, const char *how, uint64_t delay,
                              long (*arm)(uint64_t deadline))
{
    uint64_t start = system_time_ns();
    long rc = arm(start + delay);
    uint64_t took;

    if (!expect_rc(how, rc, 0))
        return;
    rc = poll_ports(&port, 1, start + 1000 * NS_PER_MS);
    took = system_time_ns() - start;
    report(rc == 0 && port_pending(s, port) && took + 100 * NS_PER_US >= delay && took < 500 * NS_PER_MS,
           "%s: VIRQ_TIMER on port %u after %lu us (armed %lu us ahead)", how, port, (unsigned long)(took / NS_PER_US),
           (unsigned long)(delay / NS_PER_US));
    clear_pending(s, port);
}

static long arm_singleshot(uint64_t deadline)
{
    struct vcpu_set_singleshot_timer set = { .timeout_abs_ns = deadline };

    return HYPERVISOR_vcpu_op(VCPUOP_set_singleshot_timer, 0, &set);
}

static long arm_timer_op(uint64_t deadline)
{
    return HYPERVISOR_set_timer_op(deadline);
}

static void check_timers(volatile struct shared_info *s)
{
    struct evtchn_bind_virq bind = { .virq = VIRQ_TIMER, .vcpu = 0 };
    struct vcpu_set_singleshot_timer past = { .flags = VCPU_SSHOTTMR_future };
    evtchn_port_t port;
    uint64_t start, took;
    char buf[24];
    long rc;

    if (!expect_rc("EVTCHNOP_bind_virq(VIRQ_TIMER, vCPU 0)", HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &bind), 0))
        return;
    port = bind.port;
    mask_port(s, port);
    expect_timer_virq(s, port, "VCPUOP_set_singleshot_timer", 10 * NS_PER_MS, arm_singleshot);
    expect_timer_virq(s, port, "set_timer_op", 5 * NS_PER_MS, arm_timer_op);

    /* A stopped timer sends nothing: the poll runs to its own timeout. */
    arm_singleshot(system_time_ns() + 5 * NS_PER_MS);
    expect_rc("VCPUOP_stop_singleshot_timer", HYPERVISOR_vcpu_op(VCPUOP_stop_singleshot_timer, 0, NULL), 0);
    start = system_time_ns();
    rc = poll_ports(&port, 1, start + 30 * NS_PER_MS);
    took = system_time_ns() - start;
    report(rc == 0 && !port_pending(s, port) && took + 100 * NS_PER_US >= 30 * NS_PER_MS,
           "a stopped timer sends no VIRQ: the poll timed out after %lu us", (unsigned long)(took / NS_PER_US));

    /*
     * SCHEDOP_block: with the timer's port unmasked its VIRQ marks vCPU 0's
     * upcall pending, which ends the block (interrupts stay off here: the
     * upcall itself is never taken).
     */
    __atomic_and_fetch(&s->evtchn_mask[port / BITS_PER_WORD], ~((xen_ulong_t)1 << (port % BITS_PER_WORD)),
                       __ATOMIC_SEQ_CST);
    /* As an upcall handler would: else a selector bit left set (by console
     * input that came before the ports were masked) hides the next event. */
    s->vcpu_info[0].evtchn_upcall_pending = 0;
    __atomic_exchange_n(&s->vcpu_info[0].evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    start = system_time_ns();
    arm_singleshot(start + 10 * NS_PER_MS);
    rc = HYPERVISOR_sched_op(SCHEDOP_block, NULL);
    took = system_time_ns() - start;
    report(rc == 0 && s->vcpu_info[0].evtchn_upcall_pending && took + 100 * NS_PER_US >= 10 * NS_PER_MS &&
               took < 500 * NS_PER_MS,
           "SCHEDOP_block returns on the timer's event: %s after %lu us", rc_str(rc, buf),
           (unsigned long)(took / NS_PER_US));
    mask_port(s, port);
    clear_pending(s, port);
    s->vcpu_info[0].evtchn_upcall_pending = 0;
    s->vcpu_info[0].evtchn_pending_sel = 0;

    past.timeout_abs_ns = system_time_ns() - NS_PER_MS;
    expect_rc("VCPUOP_set_singleshot_timer in the past with VCPU_SSHOTTMR_future is -ETIME",
              HYPERVISOR_vcpu_op(VCPUOP_set_singleshot_timer, 0, &past), -XEN_ETIME);
    expect_rc("VCPUOP_set_singleshot_timer of a vCPU that does not exist is -ENOENT",
              HYPERVISOR_vcpu_op(VCPUOP_set_singleshot_timer, 0xffff, &past), -XEN_ENOENT);
    expect_rc("EVTCHNOP_close of the VIRQ_TIMER port", close_port(port), 0);
}

/* --- Upcalls: the per-vCPU vector, taken as an interrupt ------------------ */

#define UPCALL_VECTOR 0xf3
#define MSR_APIC_BASE 0x1b
#define MSR_X2APIC_ID 0x802
#define MSR_X2APIC_EOI 0x80b
#define MSR_X2APIC_SVR 0x80f
#define MSR_X2APIC_LVT_LINT0 0x835
#define MSR_X2APIC_LVT_LINT1 0x836
#define LVT_MASKED (1u << 16)
#define SPURIOUS_VECTOR 0xff

static volatile struct shared_info *upcall_shared;
static evtchn_port_t upcall_timer_port;
static volatile unsigned int upcalls, timer_events;

static uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;

    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static void wrmsr(uint32_t msr, uint64_t value)
{
    asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

/*
 * What a Xen guest's upcall handler does (Linux: __xen_evtchn_do_upcall):
 * clear evtchn_upcall_pending, take the selector, handle every pending
 * unmasked port of its words; then the LAPIC's EOI, since a per-vCPU
 * vector is an ordinary LAPIC interrupt.
 */
static void handle_high_upcall(void);

static void handle_upcall(void)
{
    volatile struct shared_info *s = upcall_shared;
    volatile struct vcpu_info *v = &s->vcpu_info[0];
    xen_ulong_t sel;

    /* The other vCPU that takes upcalls: check_high_vcpu's. */
    if (rdmsr(MSR_X2APIC_ID) != 0) {
        handle_high_upcall();
        wrmsr(MSR_X2APIC_EOI, 0);
        return;
    }
    upcalls++;
    v->evtchn_upcall_pending = 0;
    sel = __atomic_exchange_n(&v->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        unsigned int word = __builtin_ctzl(sel);
        xen_ulong_t ready = s->evtchn_pending[word] & ~s->evtchn_mask[word];

        sel &= sel - 1;
        while (ready) {
            unsigned int bit = __builtin_ctzl(ready);
            evtchn_port_t port = word * BITS_PER_WORD + bit;

            ready &= ready - 1;
            __atomic_and_fetch(&s->evtchn_pending[word], ~((xen_ulong_t)1 << bit), __ATOMIC_SEQ_CST);
            if (port == upcall_timer_port)
                timer_events++;
        }
    }
    wrmsr(MSR_X2APIC_EOI, 0);
}

/*
 * VIRQ_TIMER taken as an interrupt: the upcall vector set with
 * HVMOP_set_evtchn_upcall_vector, the timer's port unmasked, interrupts on
 * while the vCPU halts; three timers, three handled events.
 */
static void check_upcalls(volatile struct shared_info *s)
{
    struct xen_hvm_evtchn_upcall_vector set = { .vcpu = 0, .vector = UPCALL_VECTOR };
    struct evtchn_bind_virq bind = { .virq = VIRQ_TIMER, .vcpu = 0 };
    uint32_t eax = 1, ebx, ecx, edx;
    uint64_t start, deadline;

    asm volatile("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx));
    if (!report(ecx & (1u << 21), "the CPU has an x2APIC (CPUID.1:ECX[21]), for the upcall's EOI"))
        return;
    wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | (1u << 11) | (1u << 10));
    /* Software-enable the LAPIC (a disabled one drops fixed interrupts),
     * and mask LINT0/1: KVM resets the BSP's LINT0 to ExtINT, and the
     * uninitialised 8259 would turn the GSI 10 callback into vector 2. */
    wrmsr(MSR_X2APIC_SVR, (1u << 8) | SPURIOUS_VECTOR);
    wrmsr(MSR_X2APIC_LVT_LINT0, LVT_MASKED);
    wrmsr(MSR_X2APIC_LVT_LINT1, LVT_MASKED);
    upcall_shared = s;
    traps_set_upcall(UPCALL_VECTOR, handle_upcall);
    if (!expect_rc("HVMOP_set_evtchn_upcall_vector(vCPU 0, 0xf3)", HYPERVISOR_hvm_op(HVMOP_set_evtchn_upcall_vector, &set), 0))
        return;
    if (!expect_rc("EVTCHNOP_bind_virq(VIRQ_TIMER) for upcalls", HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &bind), 0))
        return;
    upcall_timer_port = bind.port;
    __atomic_and_fetch(&s->evtchn_mask[bind.port / BITS_PER_WORD], ~((xen_ulong_t)1 << (bind.port % BITS_PER_WORD)),
                       __ATOMIC_SEQ_CST);

    start = system_time_ns();
    deadline = start + 2000 * NS_PER_MS;
    for (unsigned int round = 1; round <= 3 && system_time_ns() < deadline; round++) {
        arm_singleshot(system_time_ns() + 5 * NS_PER_MS);
        /* sti; hlt: an interrupt between them still ends the hlt. */
        while (timer_events < round && system_time_ns() < deadline)
            asm volatile("sti; hlt; cli" ::: "memory");
    }
    report(timer_events == 3 && upcalls >= 3,
           "VIRQ_TIMER taken as upcalls on vector %#x: %u timer events in %u upcalls, %lu us", UPCALL_VECTOR,
           timer_events, upcalls, (unsigned long)((system_time_ns() - start) / NS_PER_US));
    mask_port(s, bind.port);
    expect_rc("EVTCHNOP_close of the upcalls' VIRQ_TIMER port", close_port(bind.port), 0);
}

/* --- The PV console ring (xen/io/console.h) ----------------------------- */

/*
 * HVM_PARAM_CONSOLE_PFN and _EVTCHN name the ring page and the channel to
 * the console backend. Writes a line through the ring and waits for the
 * backend to consume it; with "console-input" on the command line, also
 * waits up to 2 s for a line of input and echoes it through console_io.
 */
static bool hvm_param(uint32_t index, uint64_t *value)
{
    struct xen_hvm_param p = { .domid = DOMID_SELF, .index = index };
    long rc = HYPERVISOR_hvm_op(HVMOP_get_param, &p);

    *value = p.value;
    return expect_rc(index == HVM_PARAM_CONSOLE_PFN ? "HVMOP_get_param(CONSOLE_PFN)" : "HVMOP_get_param(CONSOLE_EVTCHN)",
                     rc, 0);
}

static void ring_write(volatile struct xencons_interface *ring, evtchn_port_t port, const char *text)
{
    XENCONS_RING_IDX prod = ring->out_prod;
    size_t len = strnlen(text, sizeof(ring->out));
    struct evtchn_send send = { .port = port };

    for (size_t i = 0; i < len; i++)
        ring->out[MASK_XENCONS_IDX(prod + i, ring->out)] = text[i];
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    ring->out_prod = prod + len;
    expect_rc("EVTCHNOP_send on the console port", HYPERVISOR_event_channel_op(EVTCHNOP_send, &send), 0);
}

/* Polls `port` until `done` or `ms` milliseconds of system time passed. */
static bool wait_on(evtchn_port_t port, volatile struct shared_info *s, bool (*done)(volatile struct xencons_interface *),
                    volatile struct xencons_interface *ring, uint64_t ms)
{
    uint64_t deadline = system_time_ns() + ms * NS_PER_MS;

    while (!done(ring) && system_time_ns() < deadline) {
        poll_ports(&port, 1, deadline);
        clear_pending(s, port);
    }
    return done(ring);
}

static bool out_consumed(volatile struct xencons_interface *ring)
{
    return ring->out_cons == ring->out_prod;
}

static bool in_has_line(volatile struct xencons_interface *ring)
{
    for (XENCONS_RING_IDX i = ring->in_cons; i != ring->in_prod; i++)
        if (ring->in[MASK_XENCONS_IDX(i, ring->in)] == '\n')
            return true;
    return false;
}

static void check_console_ring(volatile struct shared_info *s)
{
    volatile struct xencons_interface *ring;
    uint64_t pfn, evtchn;
    evtchn_port_t port;
    char line[128];
    size_t n = 0;

    if (!hvm_param(HVM_PARAM_CONSOLE_PFN, &pfn) || !hvm_param(HVM_PARAM_CONSOLE_EVTCHN, &evtchn))
        return;
    if (!report(pfn != 0 && evtchn != 0 && mapped(pfn << 12, 4096), "console ring at pfn %#lx, port %lu",
                (unsigned long)pfn, (unsigned long)evtchn))
        return;
    ring = (volatile struct xencons_interface *)(uintptr_t)(pfn << 12);
    port = (evtchn_port_t)evtchn;
    mask_port(s, port);
    ring_write(ring, port, "pvh-test: hello through the PV console ring\n");
    report(wait_on(port, s, out_consumed, ring, 1000), "the console backend consumed the ring (out_cons %u)",
           ring->out_cons);

    if (!console_input)
        return;
    if (!report(wait_on(port, s, in_has_line, ring, 2000), "a line of console input arrived"))
        return;
    while (ring->in_cons != ring->in_prod && n + 1 < sizeof(line)) {
        char c = ring->in[MASK_XENCONS_IDX(ring->in_cons, ring->in)];

        ring->in_cons++;
        if (c == '\n')
            break;
        line[n++] = c;
    }
    line[n] = '\0';
    printk("console input: %s\n", line);
}

/* --- VCPUOP_register_vcpu_info ------------------------------------------ */

static uint8_t vcpu_info_page[4096] __attribute__((aligned(4096)));

static long register_vcpu_info(unsigned int vcpu, uint64_t mfn, uint32_t offset)
{
    struct vcpu_register_vcpu_info info = { .mfn = mfn, .offset = offset };

    return HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, vcpu, &info);
}

/*
 * Moves vCPU 0's vcpu_info into this kernel's memory (as Linux >= 5.16
 * must), then checks that events and time land there, not in shared_info.
 */
static void check_vcpu_info(volatile struct shared_info *s)
{
    uint64_t mfn = (uintptr_t)vcpu_info_page >> 12;
    volatile struct vcpu_info *moved = (volatile struct vcpu_info *)(vcpu_info_page + 64);
    struct evtchn_bind_interdomain bind = { .remote_dom = DOMID_SELF };
    struct evtchn_send send;
    evtchn_port_t a;
    uint64_t t0;

    expect_rc("register_vcpu_info across the page end is -EINVAL", register_vcpu_info(0, mfn, 4096 - 32), -XEN_EINVAL);
    expect_rc("register_vcpu_info at a misaligned offset is -EINVAL", register_vcpu_info(0, mfn, 4), -XEN_EINVAL);
    expect_rc("register_vcpu_info outside RAM is -EINVAL", register_vcpu_info(0, 0x100000, 0), -XEN_EINVAL);
    expect_rc("register_vcpu_info of a vCPU that does not exist is -ENOENT", register_vcpu_info(0xffff, mfn, 64),
              -XEN_ENOENT);
    if (!expect_rc("VCPUOP_register_vcpu_info(vCPU 0) into the kernel's own page", register_vcpu_info(0, mfn, 64), 0))
        return;
    report(moved->evtchn_upcall_pending == 1 && moved->evtchn_pending_sel == ~(xen_ulong_t)0,
           "the moved vcpu_info has everything marked pending (Xen's map_vcpu_info)");
    expect_rc("a second register_vcpu_info is -EINVAL", register_vcpu_info(0, mfn, 128), -XEN_EINVAL);

    pvclock = &moved->time;
    t0 = system_time_ns();
    for (volatile int i = 0; i < 100000; i++)
        ;
    report(moved->time.tsc_to_system_mul != 0 && !(moved->time.version & 1) && system_time_ns() > t0,
           "the moved vcpu_info keeps the pvclock: %lu ns", (unsigned long)t0);

    moved->evtchn_upcall_pending = 0;
    moved->evtchn_pending_sel = 0;
    s->vcpu_info[0].evtchn_upcall_pending = 0;
    s->vcpu_info[0].evtchn_pending_sel = 0;
    if (!expect_rc("EVTCHNOP_alloc_unbound (port a)", alloc_unbound(&a), 0))
        return;
    bind.remote_port = a;
    if (!expect_rc("EVTCHNOP_bind_interdomain to port a", HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &bind), 0))
        return;
    /* Unmasked: the send marks the selector and the upcall of vCPU 0. */
    __atomic_and_fetch(&s->evtchn_mask[a / BITS_PER_WORD], ~((xen_ulong_t)1 << (a % BITS_PER_WORD)), __ATOMIC_SEQ_CST);
    clear_pending(s, a);
    send.port = bind.local_port;
    expect_rc("EVTCHNOP_send after the move", HYPERVISOR_event_channel_op(EVTCHNOP_send, &send), 0);
    report(port_pending(s, a) && moved->evtchn_upcall_pending == 1 &&
               (moved->evtchn_pending_sel & ((xen_ulong_t)1 << (a / BITS_PER_WORD))),
           "the send after the move marked the moved vcpu_info (upcall %u, selector %#lx)",
           moved->evtchn_upcall_pending, (unsigned long)moved->evtchn_pending_sel);
    report(s->vcpu_info[0].evtchn_upcall_pending == 0 && s->vcpu_info[0].evtchn_pending_sel == 0,
           "shared_info's old vcpu_info[0] stays untouched");
    mask_port(s, a);
    close_port(bind.local_port);
    close_port(a);
}

/*
 * A vCPU from 32 on has no vcpu_info in shared_info: an event bound to it
 * stays pending, announced nowhere the guest sees, until a vcpu_info is
 * registered for it, which vCPU 0 may do while that vCPU is still offline
 * (Linux does so for each CPU it brings up); the registration marks
 * everything pending. Then the vCPU comes up through INIT/SIPI and takes
 * its events as upcalls. Needs "vcpus=N" with N > 32; uses the last vCPU.
 */
static volatile struct vcpu_info *high_info;
static evtchn_port_t high_port;
static volatile evtchn_port_t high_timer_port;
static volatile unsigned int high_running, high_upcalls, high_events, high_timer_events;
/* vCPU 0 sets go; the high vCPU then checks its own timer and sets done. */
static volatile unsigned int high_timer_go, high_timer_done;
static volatile long high_timer_rc;
static uint8_t high_stack[8192] __attribute__((aligned(16)));

/* Consumes `port` if `sel` selects its word and it is pending and unmasked. */
static bool take_port(volatile struct shared_info *s, xen_ulong_t sel, evtchn_port_t port)
{
    unsigned int word = port / BITS_PER_WORD;
    xen_ulong_t bit = (xen_ulong_t)1 << (port % BITS_PER_WORD);

    return port != 0 && (sel & ((xen_ulong_t)1 << word)) && (s->evtchn_pending[word] & ~s->evtchn_mask[word] & bit) &&
           (__atomic_fetch_and(&s->evtchn_pending[word], ~bit, __ATOMIC_SEQ_CST) & bit);
}

/* The high vCPU's upcall: only its ports are bound to it (Linux's per-CPU mask). */
static void handle_high_upcall(void)
{
    volatile struct shared_info *s = upcall_shared;
    xen_ulong_t sel;

    high_upcalls++;
    high_info->evtchn_upcall_pending = 0;
    sel = __atomic_exchange_n(&high_info->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    if (take_port(s, sel, high_port))
        high_events++;
    if (take_port(s, sel, high_timer_port))
        high_timer_events++;
}

/*
 * On the high vCPU, its own hypercalls: VIRQ_TIMER bound to itself, its
 * singleshot timer armed 5 ms ahead, the VIRQ taken as an upcall. Returns
 * the first failing hypercall's rc, 1 if no VIRQ came within 1 s.
 */
static long high_vcpu_timer(void)
{
    volatile struct shared_info *s = upcall_shared;
    unsigned int self = high_running - 1;
    struct evtchn_bind_virq bind = { .virq = VIRQ_TIMER, .vcpu = self };
    struct vcpu_set_singleshot_timer set = { .flags = 0 };
    uint64_t deadline;
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &bind);

    if (rc)
        return rc;
    __atomic_and_fetch(&s->evtchn_mask[bind.port / BITS_PER_WORD], ~((xen_ulong_t)1 << (bind.port % BITS_PER_WORD)),
                       __ATOMIC_SEQ_CST);
    high_timer_port = bind.port;
    set.timeout_abs_ns = system_time_ns() + 5 * NS_PER_MS;
    rc = HYPERVISOR_vcpu_op(VCPUOP_set_singleshot_timer, self, &set);
    deadline = system_time_ns() + 1000 * NS_PER_MS;
    /* Interrupts on only in hlt: the VIRQ's upcall ends it. */
    while (rc == 0 && high_timer_events == 0 && system_time_ns() < deadline)
        asm volatile("sti; hlt; cli" ::: "memory");
    mask_port(s, bind.port);
    high_timer_port = 0;
    close_port(bind.port);
    return rc ? rc : high_timer_events == 1 ? 0 : 1;
}

/*
 * The high vCPU's life: this kernel's IDT, its x2APIC on, then halt with
 * interrupts on; once vCPU 0 says go (and an upcall wakes it), its timer.
 */
static void high_vcpu_main(void)
{
    traps_load();
    wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | (1u << 11) | (1u << 10));
    wrmsr(MSR_X2APIC_SVR, (1u << 8) | SPURIOUS_VECTOR);
    high_running = (unsigned int)rdmsr(MSR_X2APIC_ID) + 1;
    while (!high_timer_go)
        asm volatile("sti; hlt; cli" ::: "memory");
    high_timer_rc = high_vcpu_timer();
    high_timer_done = 1;
    for (;;)
        asm volatile("sti; hlt; cli" ::: "memory");
}

/* Spins (vCPU 0 keeps interrupts off) until *counter reaches `want`, 2 s at most. */
static bool wait_for(volatile unsigned int *counter, unsigned int want)
{
    uint64_t deadline = system_time_ns() + 2000 * NS_PER_MS;

    while (*counter < want && system_time_ns() < deadline)
        asm volatile("pause" ::: "memory");
    return *counter >= want;
}

static void check_high_vcpu(volatile struct shared_info *s)
{
    unsigned int high = nr_vcpus - 1;
    uint64_t mfn = (uintptr_t)vcpu_info_page >> 12;
    volatile struct vcpu_info *info = (volatile struct vcpu_info *)(vcpu_info_page + 128);
    struct evtchn_bind_interdomain bind = { .remote_dom = DOMID_SELF };
    struct xen_hvm_evtchn_upcall_vector vector = { .vcpu = high, .vector = UPCALL_VECTOR };
    struct evtchn_bind_vcpu to_high, to_none;
    struct evtchn_send send;
    evtchn_port_t a;

    if (nr_vcpus <= 32) {
        printk("pvh-test: no vcpus=N above 32 on the command line: vCPUs from 32 on are not checked\n");
        return;
    }
    if (!expect_rc("EVTCHNOP_alloc_unbound (port a, for the high vCPU)", alloc_unbound(&a), 0))
        return;
    bind.remote_port = a;
    if (!expect_rc("EVTCHNOP_bind_interdomain to port a", HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &bind), 0))
        return;
    to_high = (struct evtchn_bind_vcpu){ .port = a, .vcpu = high };
    to_none = (struct evtchn_bind_vcpu){ .port = a, .vcpu = nr_vcpus };
    expect_rc("EVTCHNOP_bind_vcpu to a vCPU that does not exist is -ENOENT",
              HYPERVISOR_event_channel_op(EVTCHNOP_bind_vcpu, &to_none), -XEN_ENOENT);
    printk("pvh-test: port a is %u, bound to vCPU %u of %u\n", a, high, nr_vcpus);
    if (!expect_rc("EVTCHNOP_bind_vcpu(port a, the last vCPU)", HYPERVISOR_event_channel_op(EVTCHNOP_bind_vcpu, &to_high), 0))
        return;
    __atomic_and_fetch(&s->evtchn_mask[a / BITS_PER_WORD], ~((xen_ulong_t)1 << (a % BITS_PER_WORD)), __ATOMIC_SEQ_CST);
    clear_pending(s, a);

    /* Before the vCPU has a vcpu_info: pending, announced nowhere visible. */
    send.port = bind.local_port;
    expect_rc("EVTCHNOP_send to the high vCPU before it has a vcpu_info", HYPERVISOR_event_channel_op(EVTCHNOP_send, &send), 0);
    report(port_pending(s, a), "the event waits, pending in shared_info");

    expect_rc("register_vcpu_info of a vCPU that does not exist is -ENOENT", register_vcpu_info(nr_vcpus, mfn, 128),
              -XEN_ENOENT);
    if (!expect_rc("VCPUOP_register_vcpu_info of offline vCPU above 31", register_vcpu_info(high, mfn, 128), 0))
        return;
    /* map_vcpu_info: a fresh one (upcall mask set), then all marked pending. */
    report(info->evtchn_upcall_pending == 1 && info->evtchn_pending_sel == ~(xen_ulong_t)0 &&
               info->evtchn_upcall_mask == 1,
           "the high vCPU's new vcpu_info has everything marked pending, the upcall mask set (upcall %u, mask %u, "
           "selector %#lx)",
           info->evtchn_upcall_pending, info->evtchn_upcall_mask, (unsigned long)info->evtchn_pending_sel);
    report(info->time.tsc_to_system_mul != 0 && !(info->time.version & 1),
           "the high vCPU's vcpu_info has the pvclock (version %u)", info->time.version);
    expect_rc("a second register_vcpu_info of the high vCPU is -EINVAL", register_vcpu_info(high, mfn, 192),
              -XEN_EINVAL);

    /* Up it comes; its upcall vector set, it takes what waited, then the next. */
    if (!report(rdmsr(MSR_APIC_BASE) & (1u << 10), "vCPU 0's x2APIC is on (check_upcalls), for INIT/SIPI"))
        goto out;
    upcall_shared = s;
    traps_set_upcall(UPCALL_VECTOR, handle_upcall);
    high_info = info;
    high_port = a;
    smp_start(high, high_stack + sizeof(high_stack), high_vcpu_main);
    if (!report(wait_for(&high_running, 1) && high_running == high + 1, "vCPU %u came up through INIT/SIPI", high))
        goto out;
    if (!expect_rc("HVMOP_set_evtchn_upcall_vector(the high vCPU, 0xf3)",
                   HYPERVISOR_hvm_op(HVMOP_set_evtchn_upcall_vector, &vector), 0))
        goto out;
    report(wait_for(&high_events, 1) && high_events == 1,
           "the high vCPU took the event sent before its vcpu_info existed, in %u upcalls", high_upcalls);
    /* The send's upcall also wakes it for its timer check. */
    high_timer_go = 1;
    expect_rc("EVTCHNOP_send to the high vCPU", HYPERVISOR_event_channel_op(EVTCHNOP_send, &send), 0);
    report(wait_for(&high_events, 2) && high_events == 2, "the high vCPU took the next event as an upcall (%u upcalls)",
           high_upcalls);
    report(wait_for(&high_timer_done, 1) && high_timer_rc == 0,
           "the high vCPU's own singleshot timer sent its VIRQ_TIMER, taken as an upcall (rc %ld, %u timer events)",
           high_timer_rc, high_timer_events);
out:
    mask_port(s, a);
    close_port(bind.local_port);
    close_port(a);
}

/* --- The rest ---------------------------------------------------------- */

static void check_misc_hypercalls(void)
{
    expect_rc("SCHEDOP_yield", HYPERVISOR_sched_op(SCHEDOP_yield, NULL), 0);
    expect_rc("hypercall 60 (unknown) is -ENOSYS", hypercall(60, 0, 0, 0, 0, 0), -XEN_ENOSYS);
}

void kmain(const struct hvm_start_info *si)
{
    volatile struct shared_info *shared;
    bool have_clock = false;

    traps_init();
    /* Without Xen's CPUID leaves there is no console either: just stop. */
    if (!hypercall_init())
        halt_forever();
    printk("pvh-test: Xen CPUID leaves at %#x, kernel at [%p, %p)\n", xen_cpuid_base, __kernel_start,
           __kernel_end);

    if (check_start_info(si)) {
        handle_cmdline(si);
        check_memmap(si);
        check_memory_map_op(si);
    }
    check_xen_version();
    shared = map_shared_info();
    if (shared) {
        mask_all_ports(shared);
        have_clock = check_pvclock(shared);
    }
    check_callback_param();
    check_port_exhaustion();
    if (shared)
        check_loopback_poll(shared, have_clock);
    if (shared && have_clock) {
        check_timers(shared);
        check_upcalls(shared);
        check_console_ring(shared);
        check_vcpu_info(shared);
        check_high_vcpu(shared);
    }
    check_misc_hypercalls();

    if (failures == 0) {
        printk("pvh-test: all checks passed\n");
        shutdown(SHUTDOWN_poweroff);
    }
    printk("pvh-test: %u checks failed\n", failures);
    shutdown(SHUTDOWN_crash);
}
