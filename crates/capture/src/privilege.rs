//! Giving up root once the captures are open, and the process's open-file limit.
//!
//! A daemon started as root opens its packet sockets, then becomes an unprivileged account
//! (or stays root, if that is the account configured) that keeps exactly two capabilities:
//! `CAP_NET_RAW` (to open a packet socket again when an interface comes back) and
//! `CAP_NET_ADMIN` (promiscuous mode). The capability bounding set is cut to the same two and
//! `no_new_privs` is set, so no program it could ever execute (a set-user-id binary, a file
//! with capabilities) gives anything back. Everything else root could do is gone for good.
//! Linux only; call it while the process has one thread, because capabilities, the bounding
//! set and `no_new_privs` belong to threads and new threads inherit the caller's.

use std::ffi::CString;
use std::io;

/// Capability numbers (linux/capability.h).
const CAP_SETPCAP: u32 = 8;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
/// The capabilities kept, by name, for the log.
const KEPT: [(u32, &str); 2] = [
    (CAP_NET_RAW, "CAP_NET_RAW"),
    (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
];
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// An account to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its name as configured.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Why privileges could not be dropped.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// The account does not exist.
    #[error("no such user: {0:?}")]
    NoUser(String),
    /// A system call refused.
    #[error("{call} failed: {err}")]
    Call {
        /// The call.
        call: &'static str,
        /// What the kernel said.
        err: io::Error,
    },
}

fn check(call: &'static str, rc: libc::c_int) -> Result<(), PrivilegeError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(PrivilegeError::Call {
            call,
            err: io::Error::last_os_error(),
        })
    }
}

/// Look an account up by name in the system's user database (a number is taken as a uid
/// whose group is the same number).
pub fn lookup_user(name: &str) -> Result<Account, PrivilegeError> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(Account {
            name: name.to_string(),
            uid: id,
            gid: id,
        });
    }
    let no_user = || PrivilegeError::NoUser(name.to_string());
    let cname = CString::new(name).map_err(|_| no_user())?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: `passwd` is plain data; all-zero is a valid (empty) value that getpwnam_r fills.
    #[allow(unsafe_code)]
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf.len()` is the buffer's true size;
    // the strings getpwnam_r stores point into `buf`, which outlives their only use below.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(no_user());
    }
    Ok(Account {
        name: name.to_string(),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// What [`drop_to`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The user id changed (false: the process already ran as that account, e.g. root).
    pub switched: bool,
    /// The capabilities kept, effective and permitted (`CAP_NET_RAW`, `CAP_NET_ADMIN`, those
    /// of the two the process had).
    pub kept: Vec<&'static str>,
    /// The bounding set now holds nothing but the kept capabilities (false only when it held
    /// more and the process lacked `CAP_SETPCAP` to cut it; `no_new_privs` covers that case).
    pub bounding_cleared: bool,
}

/// The process's capability sets (first 32 capabilities; the two kept are among them).
fn capget() -> Result<CapData, PrivilegeError> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: a valid version-3 header and two data words, both live across the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    check("capget", if rc == 0 { 0 } else { -1 })?;
    Ok(data[0])
}

/// Cut the bounding set to `keep` (bits of the first 32 capabilities). Returns false when
/// capabilities remain that the process may not drop (no `CAP_SETPCAP`).
fn clear_bounding_set(keep: u32, may_drop: bool) -> Result<bool, PrivilegeError> {
    let mut cleared = true;
    // Capability numbers run up to the kernel's `cap_last_cap`; reading past it fails.
    for cap in 0..64u32 {
        // SAFETY: prctl with integer arguments only.
        #[allow(unsafe_code)]
        let held = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if held < 0 {
            break;
        }
        let kept = cap < 32 && keep & (1 << cap) != 0;
        if held == 0 || kept {
            continue;
        }
        if !may_drop {
            cleared = false;
            continue;
        }
        // SAFETY: as above.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        check("prctl(PR_CAPBSET_DROP)", rc)?;
    }
    Ok(cleared)
}

/// Become `account` (or stay, when the process already runs as it: root for `user = "root"`),
/// keeping only `CAP_NET_RAW` and `CAP_NET_ADMIN` (effective and permitted; nothing
/// inheritable), with the bounding set cut to those two and `no_new_privs` set.
/// Supplementary groups are cleared when the user changes.
pub fn drop_to(account: &Account) -> Result<Dropped, PrivilegeError> {
    let wanted = KEPT.iter().fold(0u32, |m, (cap, _)| m | (1 << cap));
    let before = capget()?;
    let keep = wanted & before.permitted;
    // The bounding set first: cutting it needs CAP_SETPCAP, which the change of user clears.
    let bounding_cleared = clear_bounding_set(keep, before.effective & (1 << CAP_SETPCAP) != 0)?;
    // SAFETY: getuid/geteuid cannot fail and touch no memory.
    #[allow(unsafe_code)]
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    let switched = uid != account.uid || euid != account.uid;
    let gid = account.gid;
    if switched {
        // SAFETY: plain system calls with valid arguments: `prctl` with integer arguments and
        // one group id read from a live local.
        #[allow(unsafe_code)]
        unsafe {
            // Keep the permitted set across the change of user id...
            check(
                "prctl(PR_SET_KEEPCAPS)",
                libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0),
            )?;
            check("setgroups", libc::setgroups(1, &gid))?;
            check("setgid", libc::setgid(gid))?;
            check("setuid", libc::setuid(account.uid))?;
        }
    }
    // ... then narrow it to the two capabilities and make them effective.
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: keep,
            permitted: keep,
            inheritable: 0,
        },
        CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    // SAFETY: a capability header and two data words (version 3) that live across the
    // `capset` call; `prctl` with integer arguments.
    #[allow(unsafe_code)]
    unsafe {
        let rc = libc::syscall(libc::SYS_capset, &mut header, data.as_ptr());
        check("capset", if rc == 0 { 0 } else { -1 })?;
        if switched {
            check(
                "prctl(PR_SET_KEEPCAPS)",
                libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0),
            )?;
        }
        check(
            "prctl(PR_SET_NO_NEW_PRIVS)",
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
        )?;
    }
    // SAFETY: as above.
    #[allow(unsafe_code)]
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if uid != account.uid || euid != account.uid {
        return Err(PrivilegeError::Call {
            call: "setuid (user id did not change)",
            err: io::Error::from(io::ErrorKind::PermissionDenied),
        });
    }
    Ok(Dropped {
        switched,
        kept: KEPT
            .iter()
            .filter(|(cap, _)| keep & (1 << cap) != 0)
            .map(|(_, name)| *name)
            .collect(),
        bounding_cleared,
    })
}

/// Raise the soft limit on open files to the hard limit (the exporter sizes its connection
/// cap from it); returns the soft limit in force afterwards. A limit that cannot be read or
/// raised is left as it is.
pub fn raise_open_file_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a live local.
    #[allow(unsafe_code)]
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn root_is_found_and_strangers_are_not() {
        let root = lookup_user("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(matches!(
            lookup_user("no-such-user-burstwatch"),
            Err(PrivilegeError::NoUser(_))
        ));
        assert!(lookup_user("bad\0name").is_err());
        assert_eq!(lookup_user("4242").unwrap().uid, 4242);
    }
}
