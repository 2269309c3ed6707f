//! `xevtchn serve`: one doorbell program for every VM of the host. VMMs
//! register over its socket and need no BPF privilege; the program and
//! maps outlive the service; nothing stays behind. Each test starts its own
//! service (its own socket and pin directory). Not covered: a service in a
//! container's PID namespace (it refuses to start), hosts other than PVM.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use xevtchn::service::client;
use xevtchn_tests::{controller_binary, privileged};

/// A service of its own, stopped with SIGTERM on drop.
struct Service {
    child: Option<Child>,
    dir: PathBuf,
    pins: PathBuf,
    metrics: Option<u16>,
}

impl Service {
    fn start(name: &str) -> Self {
        Self::start_with_metrics(name, None)
    }

    fn start_with_metrics(name: &str, metrics: Option<u16>) -> Self {
        let dir = std::env::temp_dir().join(format!("xevtchn-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a test directory");
        let pins = PathBuf::from(format!("/sys/fs/bpf/xevtchn-test-{name}-{}", std::process::id()));
        let mut service = Self { child: None, dir, pins, metrics };
        service.spawn();
        service
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn spawn(&mut self) {
        let metrics = match self.metrics {
            Some(port) => vec!["--metrics".to_string(), format!("127.0.0.1:{port}")],
            None => vec!["--no-metrics".to_string()],
        };
        let child = Command::new(controller_binary())
            .args(["serve", "--socket-mode", "0666", "--socket"])
            .arg(self.socket())
            .arg("--pin-dir")
            .arg(&self.pins)
            .args(metrics)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting xevtchn serve");
        self.child = Some(child);
        wait_for("the service to answer", Duration::from_secs(10), || client::status(&self.socket()).is_ok());
    }

    fn registered(&self) -> Vec<u32> {
        client::status(&self.socket()).expect("the service's status")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaping the service");
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().expect("reaping the service");
            assert!(status.success(), "the service stopped with {status}");
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn vmm(service: &Service, args: &[&str]) -> Command {
    let mut cmd = Command::new(controller_binary());
    cmd.args(["run", "--backend", "bpf", "--json", "--service"]).arg(service.socket()).args(args);
    cmd
}

fn report(out: &Output) -> Value {
    assert!(out.status.success(), "xevtchn run failed ({:?}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON report")
}

fn count(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("{field} in {v}"))
}

fn assert_served_by_the_service(r: &Value) {
    assert_eq!(r["fast_path"], "service", "{r}");
    assert_eq!(count(r, "lost"), 0, "{r}");
    assert!(count(r, "sent") > 1000, "{r}");
    assert_eq!(count(r, "fast_sends"), count(r, "sent"), "every send in the kernel: {r}");
    assert_eq!(count(r, "unaccounted_sends"), 0, "{r}");
    assert_eq!(count(&r["bpf"], "canary"), 2, "MMIO and port-I/O canary doorbells: {r}");
}

#[test]
fn an_unprivileged_vmm_serves_its_doorbells_through_the_service() {
    let _vm = privileged();
    let service = Service::start("unprivileged");
    // The VMM as nobody, with no capability, in a mount namespace whose
    // /dev/kvm it may open (a container's device node), and the socket.
    let binary = service.dir.join("xevtchn");
    std::fs::copy(controller_binary(), &binary).expect("copying the binary where nobody may run it");
    let script = |env: &str, service_flag: &str| {
        format!(
            "mount -t tmpfs none {dir}/dev && mknod {dir}/dev/kvm c 10 232 && chown 65534:65534 {dir}/dev/kvm && \
             mount --bind {dir}/dev/kvm /dev/kvm && exec env {env} setpriv --reuid=65534 --regid=65534 \
             --clear-groups --inh-caps=-all --bounding-set=-all {bin} run --backend bpf --workload flood \
             --duration 2 --json {service_flag}",
            dir = service.dir.display(),
            bin = binary.display(),
        )
    };
    std::fs::create_dir_all(service.dir.join("dev")).expect("a mount point");
    for path in [&service.dir, &binary] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    let with_service = script("", &format!("--service {}", service.socket().display()));
    let out = Command::new("unshare").args(["--mount", "sh", "-c", &with_service]).output().expect("unshare");
    let r = report(&out);
    assert_served_by_the_service(&r);
    // Proof that it had no privilege: with no service to find, it cannot
    // serve its VM itself.
    let alone = script("XEVTCHN_SOCKET=/nonexistent", "");
    let out = Command::new("unshare").args(["--mount", "sh", "-c", &alone]).output().expect("unshare");
    assert!(!out.status.success(), "an unprivileged VMM with no service served itself");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CAP_BPF"), "the error names what is missing: {stderr}");
}

#[test]
fn a_killed_vmm_is_unregistered_within_a_second() {
    let _vm = privileged();
    let service = Service::start("killed-vmm");
    let mut child = vmm(&service, &["--workload", "flood", "--duration", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a VMM");
    let pid = child.id();
    wait_for("the VMM to register", Duration::from_secs(10), || service.registered().contains(&pid));
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping the VMM");
    let killed = Instant::now();
    wait_for("its slot to be freed", Duration::from_secs(1), || !service.registered().contains(&pid));
    assert!(killed.elapsed() < Duration::from_secs(1));
}

#[test]
fn vms_flood_on_through_a_service_crash_and_a_restart_adopts_the_live_ones() {
    let _vm = privileged();
    let mut service = Service::start("crash");
    let floods: Vec<Child> = (0..4)
        .map(|_| {
            vmm(&service, &["--workload", "flood", "--duration", "6"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("a VMM")
        })
        .collect();
    let mut doomed =
        vmm(&service, &["--workload", "flood", "--duration", "60"]).stdout(Stdio::null()).spawn().expect("a VMM");
    let pids: BTreeSet<u32> = floods.iter().map(Child::id).chain([doomed.id()]).collect();
    wait_for("five VMs to register", Duration::from_secs(20), || {
        pids.is_subset(&service.registered().into_iter().collect())
    });
    thread::sleep(Duration::from_secs(1));
    service.kill();
    // While the service is down, one VMM dies.
    doomed.kill().expect("SIGKILL");
    doomed.wait().expect("reaping");
    thread::sleep(Duration::from_secs(1));
    service.spawn();
    let adopted: BTreeSet<u32> = service.registered().into_iter().collect();
    let live: BTreeSet<u32> = floods.iter().map(Child::id).collect();
    assert_eq!(adopted, live, "the restarted service keeps the live VMs and frees the dead one");
    for flood in floods {
        let r = report(&flood.wait_with_output().expect("a flood's report"));
        assert_served_by_the_service(&r);
    }
    wait_for("the ended VMs to be unregistered", Duration::from_secs(2), || service.registered().is_empty());
}

fn map_ids() -> BTreeSet<u64> {
    let out = Command::new("bpftool").args(["-j", "map", "show"]).output().expect("bpftool");
    let maps: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    maps.as_array().into_iter().flatten().filter_map(|m| m["id"].as_u64()).collect()
}

#[test]
fn two_hundred_vm_start_and_kill_cycles_leave_nothing_behind() {
    let _vm = privileged();
    let before = map_ids();
    let mut service = Service::start("cycles");
    for _ in 0..200 {
        let mut child = vmm(&service, &["--workload", "pingpong", "--count", "100000000", "--timeout", "600"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("a VMM");
        let pid = child.id();
        wait_for("a VMM to register", Duration::from_secs(10), || service.registered().contains(&pid));
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping");
    }
    wait_for("every VM to be unregistered", Duration::from_secs(2), || service.registered().is_empty());
    service.stop();
    assert!(!Path::new(&service.pins).exists(), "a service stopped with no VM leaves no pin");
    // The kernel frees maps after an RCU grace period.
    wait_for("the maps of the cycles and of the service to be freed", Duration::from_secs(10), || {
        map_ids().is_subset(&before)
    });
}

/// `GET /metrics` of a service on this host, the body.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the metrics endpoint");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("a request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{head}");
    assert!(head.to_lowercase().contains("application/openmetrics-text"), "{head}");
    body.to_string()
}

fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn the_metrics_agree_with_a_runs_own_report() {
    let _vm = privileged();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let service = Service::start_with_metrics("metrics", Some(port));
    // hostile: bad sends through the VMM, then a ping-pong in the kernel.
    let child =
        vmm(&service, &["--workload", "hostile", "--count", "300"]).stdout(Stdio::piped()).spawn().expect("a VMM");
    let pid = child.id();
    let r = report(&child.wait_with_output().expect("its report"));
    wait_for("the VM to be unregistered", Duration::from_secs(2), || !service.registered().contains(&pid));
    let text = scrape(port);
    assert!(text.ends_with("# EOF\n"));
    let sends = |path: &str, outcome: &str| {
        sample(&text, &format!("xevtchn_sends_total{{pid=\"{pid}\",path=\"{path}\",outcome=\"{outcome}\"}}"))
    };
    let bpf = &r["bpf"];
    assert_eq!(sends("kernel", "raised"), count(bpf, "upcalls_raised"));
    assert_eq!(sends("kernel", "coalesced"), count(bpf, "coalesced"));
    assert_eq!(sends("kernel", "masked"), count(bpf, "masked"));
    assert_eq!(sends("kernel", "already_pending"), count(bpf, "already_pending"));
    assert_eq!(sends("userspace", "any"), count(&r, "fallback_sends"));
    assert!(count(&r, "fallback_sends") >= 3, "hostile's bad sends went through the VMM");
    assert_eq!(
        sample(&text, &format!("xevtchn_upcalls_total{{pid=\"{pid}\",path=\"userspace\"}}")),
        count(&r["host"], "upcalls_raised")
    );
    assert_eq!(sample(&text, "xevtchn_registrations_total"), 1);
    assert_eq!(sample(&text, "xevtchn_canary_failures_total"), 0);
    assert_eq!(sample(&text, "xevtchn_vms"), 0);
}
