//! Which local address a UDP datagram came to: `recvmsg` with `IP_PKTINFO`
//! (and `IPV6_PKTINFO`), so that an engine listening on `0.0.0.0` can put the
//! address a caller dialled into Contact and SDP. Linux only, like the rest of
//! the shell (timerfd).

use std::net::{IpAddr, SocketAddr};
use tokio::net::UdpSocket;

/// Turns on `IP_PKTINFO` (and its IPv6 twin) so that each datagram says which
/// local address it was sent to. Best effort: without it, `local` is the bound
/// address and the engine falls back to guessing.
pub(super) fn enable_pktinfo(sock: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let fd = sock.as_raw_fd();
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let ptr = &on as *const libc::c_int as *const libc::c_void;
    // SAFETY: setsockopt with a valid fd and a pointer to a live c_int of `len` bytes.
    unsafe {
        libc::setsockopt(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, ptr, len);
        libc::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, ptr, len);
    }
}

/// `recvmsg` with the destination address from `IP_PKTINFO`/`IPV6_PKTINFO`:
/// returns (length, source, local address the datagram came to).
pub(super) fn recv_with_dst(
    sock: &UdpSocket,
    buf: &mut [u8],
    bound: SocketAddr,
) -> std::io::Result<(usize, SocketAddr, SocketAddr)> {
    use std::os::fd::AsRawFd;
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16]; // 128 bytes, aligned for cmsghdr
                                  // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = &mut name as *mut _ as *mut libc::c_void;
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: msg points at live buffers of the lengths it states.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let source = match name.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a =
                unsafe { std::ptr::read_unaligned(&name as *const _ as *const libc::sockaddr_in) };
            SocketAddr::new(
                IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()),
                u16::from_be(a.sin_port),
            )
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a =
                unsafe { std::ptr::read_unaligned(&name as *const _ as *const libc::sockaddr_in6) };
            // Kept as it came (a v4-mapped source stays v6): replies go back
            // through the same socket.
            let v6 = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            SocketAddr::new(IpAddr::V6(v6), u16::from_be(a.sin6_port))
        }
        _ => return Err(std::io::Error::other("datagram from a non-IP address")),
    };
    let mut local_ip = bound.ip();
    // SAFETY: walking the control buffer the kernel filled, with libc's macros.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_PKTINFO {
                let info =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::in_pktinfo);
                local_ip = IpAddr::from(u32::from_be(info.ipi_addr.s_addr).to_be_bytes());
            } else if c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_PKTINFO {
                let info =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::in6_pktinfo);
                let v6 = std::net::Ipv6Addr::from(info.ipi6_addr.s6_addr);
                local_ip = v6
                    .to_ipv4_mapped()
                    .map(IpAddr::V4)
                    .unwrap_or(IpAddr::V6(v6));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, source, SocketAddr::new(local_ip, bound.port())))
}
