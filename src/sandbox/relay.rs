//! A loopback TCP relay that reaches a server from a chosen source address.
//!
//! MySQL's client has `--bind-address`; MariaDB's `mariadb` client has none (10.11 rejects it
//! as an unknown variable, on the command line and in option files). To let a test log in to
//! MariaDB "from" 127.0.0.2, the client connects to a relay on 127.0.0.1, which opens the real
//! connection bound to 127.0.0.2: the server sees that address as the client's host. One relay
//! per (server, source address) runs for the life of the process, on plain threads, so it works
//! whatever runtime (or none) the caller uses.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::io::FromRawFd;
use std::sync::Mutex;

/// The port on 127.0.0.1 of a relay to `127.0.0.1:target_port` from `source`, started on
/// first use.
pub(crate) fn relay_port(target_port: u16, source: Ipv4Addr) -> io::Result<u16> {
    static RELAYS: Mutex<Option<HashMap<(u16, Ipv4Addr), u16>>> = Mutex::new(None);
    let mut relays = RELAYS.lock().unwrap_or_else(|p| p.into_inner());
    let relays = relays.get_or_insert_with(HashMap::new);
    if let Some(port) = relays.get(&(target_port, source)) {
        return Ok(*port);
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    std::thread::Builder::new().name(format!("relay-{source}-{target_port}")).spawn(move || {
        for client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                if let Ok(server) = connect_from(source, SocketAddrV4::new(Ipv4Addr::LOCALHOST, target_port)) {
                    pipe(client, server);
                }
            });
        }
    })?;
    relays.insert((target_port, source), port);
    Ok(port)
}

/// Copies both ways until each side has closed.
fn pipe(client: TcpStream, server: TcpStream) {
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || copy_then_close(client, server));
    copy_then_close(s2, c2);
    let _ = up.join();
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// A TCP connection to `target` whose local address is `source` (std has no bind-then-connect).
fn connect_from(source: Ipv4Addr, target: SocketAddrV4) -> io::Result<TcpStream> {
    let sockaddr = |a: SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(*a.ip()).to_be() },
        sin_zero: [0; 8],
    };
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor we own; on success it moves into the
    // TcpStream, on failure it is closed here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let local = sockaddr(SocketAddrV4::new(source, 0));
        let remote = sockaddr(target);
        if libc::bind(fd, std::ptr::from_ref(&local).cast::<libc::sockaddr>(), len) != 0
            || libc::connect(fd, std::ptr::from_ref(&remote).cast::<libc::sockaddr>(), len) != 0
        {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(TcpStream::from_raw_fd(fd))
    }
}
