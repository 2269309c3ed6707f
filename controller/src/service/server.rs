//! The service itself: the doorbell host, and a Unix socket where VMMs
//! register. A Tokio task per registration holds it for as long as its
//! connection is open.

use std::{
    os::{
        fd::{AsFd, AsRawFd, FromRawFd},
        unix::fs::PermissionsExt,
    },
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::{Context, Result, bail};
use tokio::{
    io::Interest,
    net::{UnixListener, UnixStream},
    signal::unix::{SignalKind, signal},
};

use xevtchn_common::{doorbell::stat, two_level::SHARED_INFO_VCPUS};

use super::{
    metrics::{self, KernelCounts, Records},
    protocol::{self, Progress, Reply, Request},
};
use crate::bpf::{doorbell::SendOutcomes, doorbell_host::DoorbellHost};

/// Where and how the service listens.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub socket: PathBuf,
    /// Where the program and maps are pinned (in the BPF filesystem), so
    /// that the VMs it serves outlive a crash or a restart of the service.
    pub pins: PathBuf,
    /// Permission bits of the socket (who may register VMs).
    pub mode: u32,
    /// Group owning the socket, if any.
    pub group: Option<String>,
    /// Where OpenMetrics are served (None: nowhere).
    pub metrics: Option<std::net::SocketAddr>,
}

/// The service's state its tasks share.
struct Shared {
    host: Mutex<DoorbellHost>,
    records: Mutex<Records>,
}

impl Shared {
    fn host(&self) -> std::sync::MutexGuard<'_, DoorbellHost> {
        self.host.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The in-kernel counts of `pid`'s VM, from its counter map.
    fn kernel_counts(&self, pid: u32) -> Option<KernelCounts> {
        let words = self.host().counters(pid)?;
        let word = |i: u32| words.get(i as usize).copied().unwrap_or(0);
        let outcomes = (0..SHARED_INFO_VCPUS)
            .map(|v| SendOutcomes::of_vcpu(word, v))
            .fold(SendOutcomes::default(), |a, b| a.zip_with(&b, u64::wrapping_add));
        Some(KernelCounts { outcomes, bad_writes: word(stat::BAD_WRITE) })
    }

    fn unregister(&self, pid: u32) {
        let kernel = self.kernel_counts(pid).unwrap_or_default();
        self.records().ended(pid, kernel);
        self.host().unregister(pid);
    }
}

/// The inode of the initial PID namespace (PROC_PID_INIT_INO, fixed in
/// include/linux/proc_ns.h).
const INITIAL_PID_NAMESPACE: u64 = 0xEFFF_FFFC;

pub fn serve(config: &ServeConfig) -> Result<()> {
    // Peer credentials name a VMM by its pid in our namespace; the program
    // sees pids of the initial one. They agree only there.
    let ns = std::fs::metadata("/proc/self/ns/pid").context("reading /proc/self/ns/pid")?;
    if std::os::unix::fs::MetadataExt::ino(&ns) != INITIAL_PID_NAMESPACE {
        bail!("xevtchn serve must run in the host's PID namespace (it names VMMs by their host PIDs)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        mount_bpffs(&config.pins)?;
        let mut host = DoorbellHost::start_pinned(&config.pins, &tokio::runtime::Handle::current())
            .context("loading (or taking over) the doorbell program")?;
        let adopted = host.adopt();
        let shared = Arc::new(Shared { host: Mutex::new(host), records: Mutex::new(Records::default()) });
        if !adopted.is_empty() {
            eprintln!("xevtchn serve: took over {} running VMs: {adopted:?}", adopted.len());
        }
        for pid in adopted {
            shared.records().registered(pid, 0);
            tokio::spawn(watch_adopted(pid, shared.clone()));
        }
        let listener = listen(config)?;
        if let Some(addr) = config.metrics {
            serve_metrics(addr, shared.clone())?;
        }
        eprintln!("xevtchn serve: serving the doorbells of VMs that register at {}", config.socket.display());
        let mut terminate = signal(SignalKind::terminate())?;
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(registration(stream, shared.clone()));
                    }
                    Err(e) => log::warn!("accepting a connection: {e}"),
                },
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            }
        }
        let _ = std::fs::remove_file(&config.socket);
        let mut host = shared.host();
        let vms = host.registered().len();
        if vms == 0 {
            // Nothing left to serve: no program, map or pin stays behind.
            host.unpin();
            eprintln!("xevtchn serve: stopped; no VM registered, nothing left pinned");
        } else {
            eprintln!(
                "xevtchn serve: stopped; the program stays pinned at {} for the {vms} VMs still registered \
                 (a restarted service takes them over)",
                config.pins.display()
            );
        }
        anyhow::Ok(())
    })
}

/// Mounts the BPF filesystem over `pins`'s root if nothing is there yet.
fn mount_bpffs(pins: &Path) -> Result<()> {
    let root = Path::new("/sys/fs/bpf");
    if !pins.starts_with(root) {
        return Ok(());
    }
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    if mounts.lines().any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf")) {
        return Ok(());
    }
    let (source, target, kind) = (c"bpf", c"/sys/fs/bpf", c"bpf");
    // SAFETY: mount(2) with NUL-terminated strings and no data.
    if unsafe { libc::mount(source.as_ptr(), target.as_ptr(), kind.as_ptr(), 0, std::ptr::null()) } != 0 {
        bail!("mounting the BPF filesystem at /sys/fs/bpf: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// A VM registered before this service took over: unregistered when its
/// VMM exits (it has no connection to this service).
async fn watch_adopted(pid: u32, shared: Arc<Shared>) {
    let started = crate::bpf::doorbell_host::process_start(pid);
    // SAFETY: pidfd_open(2) returns a new fd or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if fd >= 0 {
        // SAFETY: the fd was just returned to us and nothing else owns it.
        let pidfd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
        // Still the same process (the pid was not reused meanwhile)?
        if started.is_some() && crate::bpf::doorbell_host::process_start(pid) == started {
            // SAFETY: the AsyncFd owns the pidfd, which nothing closes or
            // replaces while it is registered.
            let registered = unsafe { tokio::io::unix::AsyncFd::register_with_interest(pidfd, Interest::READABLE) };
            if let Ok(watched) = registered {
                let _ = watched.readable().await;
            }
        }
    }
    shared.unregister(pid);
    log::info!("adopted pid {pid} exited: its VM is unregistered");
}

/// Binds the socket (replacing a stale one) with the configured owner and mode.
fn listen(config: &ServeConfig) -> Result<UnixListener> {
    let path = &config.socket;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another xevtchn service is serving at {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    if let Some(group) = &config.group {
        chown_group(path, group)?;
    }
    Ok(listener)
}

fn chown_group(path: &Path, group: &str) -> Result<()> {
    let name = std::ffi::CString::new(group)?;
    // SAFETY: getgrnam reads a NUL-terminated name and returns a pointer to
    // static storage or null; we read gr_gid before any other call.
    let gid = unsafe {
        let entry = libc::getgrnam(name.as_ptr());
        if entry.is_null() {
            bail!("no group {group:?} (--socket-group)");
        }
        (*entry).gr_gid
    };
    std::os::unix::fs::chown(path, None, Some(gid))
        .with_context(|| format!("giving {} to group {group}", path.display()))
}

/// One VMM: its request, its maps, and its registration until it hangs up.
/// One VMM: its request, its maps, and its registration until it hangs up.
async fn registration(stream: UnixStream, shared: Arc<Shared>) {
    let pid = match stream.peer_cred().map(|c| c.pid()) {
        Ok(Some(pid)) if pid > 0 => pid as u32,
        // A peer outside our PID namespace has pid 0 here.
        _ => return refuse(&stream, "the VMM's pid is not visible from the service's PID namespace").await,
    };
    let vcpus = match read_request(&stream).await {
        Ok(Request::Register { vcpus }) => vcpus,
        Ok(Request::Status) => {
            let vms = shared.host().registered();
            return answer(&stream, &Reply::Status { vms }).await;
        }
        Err(e) => return refuse(&stream, &format!("bad request: {e}")).await,
    };
    let registered = {
        let mut host = shared.host();
        host.register(pid).map(|maps| (maps, host.cpus()))
    };
    let (maps, cpus) = match registered {
        Ok(r) => r,
        Err(e) => {
            return refuse(&stream, &format!("{:#} (one VM per VMM process)", anyhow::Error::from(e))).await;
        }
    };
    shared.records().registered(pid, vcpus);
    let reply = serde_json::to_vec(&Reply::Registered { host_tgid: pid, cpus }).unwrap_or_default();
    let fds = [maps.state.as_fd(), maps.stats.as_fd(), maps.active.as_fd()];
    let sent = stream.async_io(Interest::WRITABLE, || protocol::send(stream.as_raw_fd(), &reply, &fds)).await;
    drop(maps);
    match sent {
        Ok(()) => {
            log::info!("registered the VM of pid {pid} ({vcpus} vCPUs)");
            follow(&stream, pid, &shared).await;
            log::info!("pid {pid} hung up: its VM is unregistered");
        }
        Err(e) => log::warn!("pid {pid}: sending its maps: {e}"),
    }
    shared.unregister(pid);
}

/// Reads the VMM's progress reports (JSON lines) until it hangs up.
async fn follow(stream: &UnixStream, pid: u32, shared: &Shared) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            match serde_json::from_slice::<Progress>(&line) {
                Ok(progress) => shared.records().progress(pid, progress),
                Err(e) => log::warn!("pid {pid}: a progress report it sent is not one: {e}"),
            }
        }
        if pending.len() > protocol::MAX_MESSAGE {
            pending.clear();
        }
    }
}

/// Serves OpenMetrics at `addr` from a thread of its own.
fn serve_metrics(addr: std::net::SocketAddr, shared: Arc<Shared>) -> Result<()> {
    let server = tiny_http::Server::http(addr).map_err(|e| anyhow::anyhow!("serving metrics at {addr}: {e}"))?;
    eprintln!("xevtchn serve: metrics at http://{}/metrics", server.server_addr());
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for request in server.incoming_requests() {
            let response = if request.url() == "/metrics" {
                let text = {
                    let records = shared.records();
                    metrics::render(&records, |pid| shared.kernel_counts(pid))
                };
                let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                let header = tiny_http::Header::from_bytes("Content-Type", kind).expect("a valid header");
                tiny_http::Response::from_string(text).with_header(header)
            } else {
                tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
            };
            let _ = request.respond(response);
        }
    })?;
    Ok(())
}

async fn read_request(stream: &UnixStream) -> std::io::Result<Request> {
    let mut buf = vec![0u8; protocol::MAX_MESSAGE];
    let mut len = 0;
    loop {
        stream.readable().await?;
        match stream.try_read(&mut buf[len..]) {
            Ok(0) => return Err(std::io::Error::other("the VMM hung up")),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
        match serde_json::from_slice(&buf[..len]) {
            Ok(request) => return Ok(request),
            Err(e) if e.is_eof() && len < buf.len() => continue,
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
}

async fn refuse(stream: &UnixStream, why: &str) {
    log::warn!("refused a registration: {why}");
    answer(stream, &Reply::Refused(why.into())).await;
}

async fn answer(stream: &UnixStream, reply: &Reply) {
    let reply = serde_json::to_vec(reply).unwrap_or_default();
    let _ = stream.async_io(Interest::WRITABLE, || protocol::send(stream.as_raw_fd(), &reply, &[])).await;
}
