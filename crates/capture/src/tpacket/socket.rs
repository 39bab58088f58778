//! The packet socket's system calls: creation, options, bind, the interface's index and
//! hardware type, the fanout group, waiting for a block and the kernel's statistics.

use std::ffi::{c_void, CString};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Fanout, RingError};

pub(super) fn os(what: &'static str) -> RingError {
    RingError::Os(what, io::Error::last_os_error())
}

/// `setsockopt` with a plain value.
pub(super) fn set_opt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    what: &'static str,
    val: &T,
) -> Result<(), RingError> {
    let len = libc::socklen_t::try_from(size_of::<T>())
        .map_err(|_| RingError::Invalid(format!("{what}: option too large")))?;
    // SAFETY: `val` points to a live `T` of `len` bytes, which the kernel copies in; pointers
    // inside it (the filter program) are read by the kernel with its own checks.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast::<c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(os(what))
    }
}

/// Bind to `ifindex` for `protocol` (network byte order; 0 receives nothing).
pub(super) fn bind(fd: &OwnedFd, ifindex: libc::c_int, protocol_be: u16) -> Result<(), RingError> {
    let addr = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol_be,
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `addr` is a complete sockaddr_ll and its size is passed with it.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(os("bind"))
    }
}

/// The hardware type (`ARPHRD_*`) of the interface the socket is bound to.
pub(super) fn hatype(fd: &OwnedFd) -> Result<u16, RingError> {
    let mut addr = libc::sockaddr_ll {
        sll_family: 0,
        sll_protocol: 0,
        sll_ifindex: 0,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `addr`, which is that large.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_ll).cast::<libc::sockaddr>(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(addr.sll_hatype)
    } else {
        Err(os("getsockname"))
    }
}

/// Join the fanout group `f` (the socket must be bound) and give it its steering program.
pub(super) fn join_fanout(fd: &OwnedFd, f: &Fanout) -> Result<(), RingError> {
    let program = match &f.steer {
        Some(home) => {
            Some(super::steer::program(home).map_err(|e| RingError::Invalid(e.to_string()))?)
        }
        None => None,
    };
    let kind = if program.is_some() {
        libc::PACKET_FANOUT_CBPF
    } else {
        libc::PACKET_FANOUT_HASH
    };
    let arg = (u32::from(f.group) | (kind << 16)) as libc::c_int;
    set_opt(
        fd,
        libc::SOL_PACKET,
        libc::PACKET_FANOUT,
        "PACKET_FANOUT",
        &arg,
    )?;
    if let Some(program) = program {
        let insns: Vec<libc::sock_filter> = program
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        let fprog = libc::sock_fprog {
            len: u16::try_from(insns.len())
                .map_err(|_| RingError::Invalid("steering program too long".into()))?,
            filter: insns.as_ptr().cast_mut(),
        };
        set_opt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT_DATA,
            "PACKET_FANOUT_DATA",
            &fprog,
        )?;
    }
    Ok(())
}

/// The index of the interface called `interface`.
pub(super) fn ifindex(interface: &str) -> Result<libc::c_int, RingError> {
    let name =
        CString::new(interface).map_err(|_| RingError::Invalid("not an interface name".into()))?;
    // SAFETY: `name` is a valid NUL-terminated string for the call's duration.
    #[allow(unsafe_code)]
    let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
    let ifindex = libc::c_int::try_from(ifindex)
        .ok()
        .filter(|&i| i > 0)
        .ok_or_else(|| RingError::Invalid("no such interface".into()))?;
    Ok(ifindex)
}

/// A new AF_PACKET raw socket for protocol 0: it receives nothing until bound to a protocol.
pub(super) fn packet_socket() -> Result<OwnedFd, RingError> {
    // SAFETY: plain system call; the descriptor is checked and owned at once.
    #[allow(unsafe_code)]
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(os("socket"));
    }
    // SAFETY: `raw` is a descriptor just returned by socket(2) and owned by nobody else.
    #[allow(unsafe_code)]
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    Ok(fd)
}

/// Wait up to `timeout_ms` for the socket to be readable; an interrupted wait is no error, a
/// pending socket error is.
pub(super) fn wait(fd: &OwnedFd, timeout_ms: i32) -> Result<(), RingError> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN | libc::POLLERR,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(RingError::Os("poll", e))
        };
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        let mut err: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `err`.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast::<c_void>(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(os("getsockopt SO_ERROR"));
        }
        if err != 0 {
            return Err(RingError::Os("socket", io::Error::from_raw_os_error(err)));
        }
    }
    Ok(())
}

/// The kernel's `PACKET_STATISTICS` since the last call (reading them resets them); `None` if
/// the call failed.
pub(super) fn statistics(fd: &OwnedFd) -> Option<libc::tpacket_stats_v3> {
    let mut s = libc::tpacket_stats_v3 {
        tp_packets: 0,
        tp_drops: 0,
        tp_freeze_q_cnt: 0,
    };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `s`, which is that large.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut s as *mut libc::tpacket_stats_v3).cast::<c_void>(),
            &mut len,
        )
    };
    (rc == 0).then_some(s)
}
