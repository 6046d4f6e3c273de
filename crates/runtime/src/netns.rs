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
//! How: a short-lived thread calls `unshare(CLONE_NEWNET)` (a thread may change its own
//! network namespace), brings `lo` up, binds the listeners and keeps a descriptor of the
//! namespace. A socket stays in the namespace it was created in, so Sylph's async runtime
//! accepts on those listeners like on any other. The child process joins the namespace with
//! `setns` between fork and exec, before bubblewrap builds the rest of the sandbox. Creating a
//! network namespace needs `CAP_SYS_ADMIN` (Sylph running as root, or in a container that
//! grants it); [`probe`] says whether this host allows it.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Where the Runtime API is served inside an instance (Lambda's address).
pub const RUNTIME_API_ADDR: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9001);

/// One instance's network namespace and the listeners Sylph serves inside it.
#[derive(Debug)]
pub struct InstanceNet {
    namespace: OwnedFd,
    /// The Runtime API listener, when the instance's runtime speaks HTTP.
    pub runtime_api: Option<TcpListener>,
    /// The listener for Sylph's APIs (tables, Invoke), when Sylph serves them.
    pub sylph_api: Option<TcpListener>,
}

impl InstanceNet {
    /// A new namespace with loopback up and the listeners asked for.
    pub fn create(runtime_api: bool, sylph_api_port: Option<u16>) -> io::Result<InstanceNet> {
        // A fresh thread, so the namespace change never touches a thread of the async runtime.
        std::thread::scope(|s| {
            s.spawn(|| Self::create_on_this_thread(runtime_api, sylph_api_port))
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("network namespace set-up panicked")))
        })
    }

    fn create_on_this_thread(runtime_api: bool, sylph_api_port: Option<u16>) -> io::Result<InstanceNet> {
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
    InstanceNet::create(true, None)
        .map(drop)
        .map_err(|e| format!("cannot create a network namespace ({e}); that needs CAP_SYS_ADMIN, e.g. running as root"))
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
        let net = InstanceNet::create(true, Some(port)).unwrap();
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
