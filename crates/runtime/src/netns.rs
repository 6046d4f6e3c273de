//! A network namespace of its own for every instance.
//!
//! An instance's network holds only a loopback interface. Nothing of the host is reachable
//! from it: not the host's loopback services (databases, other Sylph servers), not link-local
//! or metadata addresses, not other instances, and `/proc/net` lists only its own sockets.
//! Sylph still serves two endpoints *inside* it, on that loopback:
//!
//! - the Lambda Runtime API at `127.0.0.1:9001` (where Lambda serves it), for runtimes that
//!   speak HTTP (`provided.*` programs, the official runtime interface clients), so no process
//!   outside the instance can take its invocations or post answers; and
//! - Sylph's own APIs (tables, Invoke) at `127.0.0.1:<port>`, the port `sylph dev` listens on,
//!   so the endpoint variables the SDKs read work unchanged.
//!
//! Outbound traffic to the rest of the world (as on Lambda) goes through **slirp4netns** (a
//! user-mode network stack, packaged in Debian), one small process per instance (about 2 MB;
//! pasta, the other candidate, keeps ~29 MB of buffers per instance), when the service allows
//! it. It is told not to lead to the host's loopback (`--disable-host-loopback`); before it
//! starts, the namespace gets "prohibit" routes for link-local addresses (cloud metadata
//! services live there) and for every address of the host's own interfaces, so neither is
//! reachable through it. It exits when its exit pipe closes, so it never outlives its instance
//! or Sylph.
//!
//! How: a short-lived thread calls `unshare(CLONE_NEWNET)` (a thread may change its own
//! network namespace), brings `lo` up, binds the listeners and keeps a descriptor of the
//! namespace. A socket stays in the namespace it was created in, so Sylph's async runtime
//! accepts on those listeners like on any other. The child process joins the namespace with
//! `setns` between fork and exec, before bubblewrap builds the rest of the sandbox. Creating a
//! network namespace needs `CAP_SYS_ADMIN` (Sylph running as root, or in a container that
//! grants it); [`probe`] says whether this host allows it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

/// Where the Runtime API is served inside an instance (Lambda's address).
pub const RUNTIME_API_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9001);

/// How instances reach the outside world: slirp4netns, and what it must never lead to.
#[derive(Debug, Clone)]
pub struct Outbound {
    slirp: PathBuf,
}

/// slirp4netns's DNS forwarder inside the namespace (its default 10.0.2.0/24 network).
pub const NAMESERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

impl Outbound {
    /// slirp4netns, if installed, with the host's own addresses and link-local ranges blocked.
    pub fn detect() -> Option<Outbound> {
        let slirp = ["/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns", "/bin/slirp4netns"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())?;
        Some(Outbound { slirp })
    }

    /// Prefixes made unreachable inside a namespace before slirp4netns starts, read anew for
    /// each (an address the host gained since Sylph started, a VPN's say, is blocked too).
    fn blocked(&self) -> Vec<(IpAddr, u8)> {
        let mut blocked: Vec<(IpAddr, u8)> = vec![
            // Link-local: cloud metadata (169.254.169.254), and the host's own link-local peers.
            (IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
            (IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
            // AWS's IPv6 metadata address.
            (IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)), 128),
        ];
        for addr in host_addresses() {
            if !addr.is_loopback() {
                blocked.push((addr, if addr.is_ipv4() { 32 } else { 128 }));
            }
        }
        blocked
    }

    pub fn describe(&self) -> String {
        format!(
            "outbound through slirp4netns ({}); the host's loopback, its own addresses and link-local ranges unreachable",
            self.slirp.display()
        )
    }
}

/// A slirp4netns process giving one namespace its outbound connectivity. It exits when its
/// exit pipe closes: when this is dropped, or when Sylph itself dies (no process is left).
#[derive(Debug)]
struct Slirp {
    child: Option<std::process::Child>,
    /// slirp4netns writes to this once the namespace's interface and routes are set up;
    /// `None` once that was seen.
    ready: Option<OwnedFd>,
    /// Closing our end tells slirp4netns to exit.
    _exit: OwnedFd,
}

impl Drop for Slirp {
    fn drop(&mut self) {
        // The exit pipe closes right after this and slirp4netns exits; reap it off this thread.
        if let Some(mut child) = self.child.take() {
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
    }
}

/// One instance's network namespace and the listeners Sylph serves inside it.
#[derive(Debug)]
pub struct InstanceNet {
    slirp: Option<Slirp>,
    namespace: OwnedFd,
    /// The Runtime API listener, when the instance's runtime speaks HTTP.
    pub runtime_api: Option<TcpListener>,
    /// The listener for Sylph's APIs (tables, Invoke), when Sylph serves them.
    pub sylph_api: Option<TcpListener>,
}

impl InstanceNet {
    /// A new namespace with loopback up and the listeners asked for; with `outbound`, its
    /// blocked routes in place and slirp4netns started (call [`InstanceNet::outbound_ready`]
    /// before relying on it).
    pub fn create(
        runtime_api: bool,
        sylph_api_port: Option<u16>,
        outbound: Option<&Outbound>,
    ) -> io::Result<InstanceNet> {
        // A fresh thread, so the namespace change never touches a thread of the async runtime.
        let mut net = std::thread::scope(|s| {
            // The host's addresses are read here, in the host's namespace.
            let blocked = outbound.map(Outbound::blocked).unwrap_or_default();
            s.spawn(move || Self::create_on_this_thread(runtime_api, sylph_api_port, &blocked))
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("network namespace set-up panicked")))
        })?;
        if let Some(outbound) = outbound {
            net.slirp = Some(net.start_slirp(outbound)?);
        }
        Ok(net)
    }

    fn start_slirp(&self, outbound: &Outbound) -> io::Result<Slirp> {
        use std::os::unix::process::CommandExt as _;
        let (ready_r, ready_w) = pipe()?;
        let (exit_r, exit_w) = pipe()?;
        // Descriptors the child gets at fixed numbers: the namespace at 3, the ready pipe at 4,
        // the exit pipe at 5 (slirp4netns exits when our end closes, even if Sylph is killed).
        let inherited = [
            (self.namespace.as_raw_fd(), 3),
            (ready_w.as_raw_fd(), 4),
            (exit_r.as_raw_fd(), 5),
        ];
        let mut cmd = std::process::Command::new(&outbound.slirp);
        cmd.args([
            "--configure",
            "--mtu=65520",
            // 10.0.2.2 would otherwise lead to the host's 127.0.0.1.
            "--disable-host-loopback",
            // Its own seccomp filter: it parses packets from untrusted code, as root.
            // (`--enable-sandbox` cannot join a namespace given by path.)
            "--enable-seccomp",
            "--ready-fd=4",
            "--exit-fd=5",
            "--netns-type=path",
            "/proc/self/fd/3",
            "tap0",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        // SAFETY: fcntl and dup2 are async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first (100 and up), so placing one never closes another.
                let mut moved = [-1; 3];
                for (i, (ours, _)) in inherited.iter().enumerate() {
                    moved[i] = libc::fcntl(*ours, libc::F_DUPFD_CLOEXEC, 100);
                    if moved[i] < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for (i, (_, theirs)) in inherited.iter().enumerate() {
                    // dup2 clears close-on-exec on the new descriptor.
                    if libc::dup2(moved[i], *theirs) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop((ready_w, exit_r));
        Ok(Slirp {
            child: Some(child),
            ready: Some(ready_r),
            _exit: exit_w,
        })
    }

    /// Resolves once slirp4netns has set the namespace's outbound interface up, or at once
    /// without outbound networking; `false` if it failed.
    pub async fn outbound_ready(&mut self) -> bool {
        let Some(slirp) = &mut self.slirp else { return true };
        let Some(ready) = slirp.ready.take() else { return true };
        let wait = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::from(ready);
            let mut byte = [0u8; 1];
            matches!(std::io::Read::read(&mut file, &mut byte), Ok(1))
        });
        // A stuck slirp4netns must not hold the invocation: it then runs without the network
        // (and the blocked read ends when slirp4netns exits with the instance).
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), wait).await,
            Ok(Ok(true))
        )
    }

    fn create_on_this_thread(
        runtime_api: bool,
        sylph_api_port: Option<u16>,
        blocked: &[(IpAddr, u8)],
    ) -> io::Result<InstanceNet> {
        // SAFETY: changes only the calling thread's network namespace; this thread ends right
        // after and never runs anything else.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: open with a static path; the descriptor is owned from here on.
        let fd = unsafe { libc::open(c"/proc/thread-self/ns/net".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor we own.
        let namespace = unsafe { OwnedFd::from_raw_fd(fd) };
        loopback_up()?;
        // Before any route to the world exists: fail closed if one cannot be added.
        for (prefix, len) in blocked {
            match add_prohibit_route(*prefix, *len) {
                // A host without IPv6 has no IPv6 route to block.
                Err(e) if prefix.is_ipv6() && e.raw_os_error() == Some(libc::EAFNOSUPPORT) => {}
                other => other?,
            }
        }
        let bind = |addr: SocketAddrV4| -> io::Result<TcpListener> {
            let l = TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Ok(l)
        };
        let runtime_api = runtime_api.then(|| bind(RUNTIME_API_ADDR)).transpose()?;
        let sylph_api = sylph_api_port
            .map(|port| bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
            .transpose()?;
        Ok(InstanceNet {
            slirp: None,
            namespace,
            runtime_api,
            sylph_api,
        })
    }

    /// The namespace descriptor, for `setns` in the child between fork and exec.
    pub fn namespace_fd(&self) -> RawFd {
        self.namespace.as_raw_fd()
    }
}

/// Join the namespace `fd` from a forked child before exec (async-signal-safe: one syscall).
pub fn join_from_child(fd: RawFd) -> io::Result<()> {
    // SAFETY: setns on a descriptor inherited from the parent; touches no memory.
    if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this host lets Sylph give instances their own network namespace; the reason if not.
pub fn probe() -> Result<(), String> {
    InstanceNet::create(true, None, None)
        .map(drop)
        .map_err(|e| format!("cannot create a network namespace ({e}); that needs CAP_SYS_ADMIN, e.g. running as root"))
}

/// A pipe, both ends close-on-exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into our array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are new descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The addresses of the host's interfaces.
fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let a = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let a = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(a.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out.sort();
    out.dedup();
    out
}

/// `ip route add prohibit PREFIX/LEN` in the calling thread's namespace, over rtnetlink.
fn add_prohibit_route(prefix: IpAddr, len: u8) -> io::Result<()> {
    const RTM_NEWROUTE: u16 = 24;
    const NLMSG_ERROR: u16 = 2;
    const RT_TABLE_MAIN: u8 = 254;
    const RTPROT_STATIC: u8 = 4;
    const RTN_PROHIBIT: u8 = 8;
    const RTA_DST: u16 = 1;
    let (family, addr): (u8, Vec<u8>) = match prefix {
        IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    let attr_len = 4 + addr.len();
    let total = 16 + 12 + attr_len;
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWROUTE.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
                                                // struct rtmsg
    msg.extend_from_slice(&[family, len, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, 0, RTN_PROHIBIT]);
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // RTA_DST
    msg.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    msg.extend_from_slice(&RTA_DST.to_ne_bytes());
    msg.extend_from_slice(&addr);
    // SAFETY: a netlink socket for this one request, closed by OwnedFd.
    let sock = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: sockaddr_nl is plain data; zero is the kernel as destination.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: sending our own buffer to the kernel address.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut reply = [0u8; 512];
    // SAFETY: receiving into our own buffer.
    let n = unsafe { libc::recv(sock.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
    if n < 20 {
        return Err(io::Error::other("no answer from the kernel to a route request"));
    }
    let kind = u16::from_ne_bytes([reply[4], reply[5]]);
    let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
    if kind == NLMSG_ERROR && code != 0 {
        return Err(io::Error::from_raw_os_error(-code));
    }
    Ok(())
}

/// `ip link set lo up` for the calling thread's namespace.
fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain socket for the interface ioctls, closed by OwnedFd.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS / SIOCSIFFLAGS read and write the ifreq we pass.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_network_sees_none_of_the_host_loopback() {
        if probe().is_err() {
            eprintln!("skipped: this host does not allow network namespaces");
            return;
        }
        // A listener on the host's loopback, as a database on the host would be.
        let host = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = host.local_addr().unwrap().port();
        let net = InstanceNet::create(true, Some(port), None).unwrap();
        // The same address inside the namespace is Sylph's own listener, not the host's.
        let inside = net.sylph_api.as_ref().unwrap().local_addr().unwrap();
        assert_eq!(inside.port(), port);
        // From the namespace, connecting to the host listener's address reaches Sylph's
        // listener in the namespace; the host listener never sees a connection.
        let fd = net.namespace_fd();
        std::thread::scope(|s| {
            s.spawn(|| {
                join_from_child(fd).unwrap();
                let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                drop(c);
                let other = std::net::TcpStream::connect(("127.0.0.1", port.wrapping_add(1).max(1024)));
                assert!(other.is_err(), "nothing else listens inside the namespace");
            })
            .join()
            .unwrap();
        });
        host.set_nonblocking(true).unwrap();
        assert!(
            host.accept().is_err(),
            "the host listener was reached from the namespace"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
        assert!(net.sylph_api.as_ref().unwrap().accept().is_ok());
    }
}
