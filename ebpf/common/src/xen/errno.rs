//! Xen error numbers: xen/include/public/errno.h.
//!
//! Hypercalls return the negated value (`-EINVAL`). EINTR and ERESTART are
//! internal to Xen (never returned to a guest) and not mirrored. On x86 they equal the
//! Linux values, but Xen's header is the reference: do not use libc here.
#![allow(missing_docs)]

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
pub const EIO: i32 = 5;
pub const ENXIO: i32 = 6;
pub const E2BIG: i32 = 7;
pub const ENOEXEC: i32 = 8;
pub const EBADF: i32 = 9;
pub const ECHILD: i32 = 10;
pub const EAGAIN: i32 = 11;
pub const EWOULDBLOCK: i32 = 11;
pub const ENOMEM: i32 = 12;
pub const EACCES: i32 = 13;
pub const EFAULT: i32 = 14;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const EXDEV: i32 = 18;
pub const ENODEV: i32 = 19;
pub const ENOTDIR: i32 = 20;
pub const EISDIR: i32 = 21;
pub const EINVAL: i32 = 22;
pub const ENFILE: i32 = 23;
pub const EMFILE: i32 = 24;
pub const ENOSPC: i32 = 28;
pub const EROFS: i32 = 30;
pub const EMLINK: i32 = 31;
pub const EDOM: i32 = 33;
pub const ERANGE: i32 = 34;
pub const EDEADLK: i32 = 35;
pub const EDEADLOCK: i32 = 35;
pub const ENAMETOOLONG: i32 = 36;
pub const ENOLCK: i32 = 37;
pub const ENOSYS: i32 = 38;
pub const ENOTEMPTY: i32 = 39;
pub const ENODATA: i32 = 61;
pub const ETIME: i32 = 62;
pub const EBADMSG: i32 = 74;
pub const EOVERFLOW: i32 = 75;
pub const EILSEQ: i32 = 84;
pub const ENOTSOCK: i32 = 88;
pub const EMSGSIZE: i32 = 90;
pub const EOPNOTSUPP: i32 = 95;
pub const EADDRINUSE: i32 = 98;
pub const EADDRNOTAVAIL: i32 = 99;
pub const ENOBUFS: i32 = 105;
pub const EISCONN: i32 = 106;
pub const ENOTCONN: i32 = 107;
pub const ETIMEDOUT: i32 = 110;
pub const ECONNREFUSED: i32 = 111;

/// Every errno above with its name, for the header comparison test and for
/// printing a hypercall result by name.
pub const ALL: &[(&str, i32)] = &[
    ("EPERM", EPERM),
    ("ENOENT", ENOENT),
    ("ESRCH", ESRCH),
    ("EIO", EIO),
    ("ENXIO", ENXIO),
    ("E2BIG", E2BIG),
    ("ENOEXEC", ENOEXEC),
    ("EBADF", EBADF),
    ("ECHILD", ECHILD),
    ("EAGAIN", EAGAIN),
    ("EWOULDBLOCK", EWOULDBLOCK),
    ("ENOMEM", ENOMEM),
    ("EACCES", EACCES),
    ("EFAULT", EFAULT),
    ("EBUSY", EBUSY),
    ("EEXIST", EEXIST),
    ("EXDEV", EXDEV),
    ("ENODEV", ENODEV),
    ("ENOTDIR", ENOTDIR),
    ("EISDIR", EISDIR),
    ("EINVAL", EINVAL),
    ("ENFILE", ENFILE),
    ("EMFILE", EMFILE),
    ("ENOSPC", ENOSPC),
    ("EROFS", EROFS),
    ("EMLINK", EMLINK),
    ("EDOM", EDOM),
    ("ERANGE", ERANGE),
    ("EDEADLK", EDEADLK),
    ("EDEADLOCK", EDEADLOCK),
    ("ENAMETOOLONG", ENAMETOOLONG),
    ("ENOLCK", ENOLCK),
    ("ENOSYS", ENOSYS),
    ("ENOTEMPTY", ENOTEMPTY),
    ("ENODATA", ENODATA),
    ("ETIME", ETIME),
    ("EBADMSG", EBADMSG),
    ("EOVERFLOW", EOVERFLOW),
    ("EILSEQ", EILSEQ),
    ("ENOTSOCK", ENOTSOCK),
    ("EMSGSIZE", EMSGSIZE),
    ("EOPNOTSUPP", EOPNOTSUPP),
    ("EADDRINUSE", EADDRINUSE),
    ("EADDRNOTAVAIL", EADDRNOTAVAIL),
    ("ENOBUFS", ENOBUFS),
    ("EISCONN", EISCONN),
    ("ENOTCONN", ENOTCONN),
    ("ETIMEDOUT", ETIMEDOUT),
    ("ECONNREFUSED", ECONNREFUSED),
];

/// The name of a Xen errno (positive or negated), if it is one.
pub fn name(errno: i64) -> Option<&'static str> {
    let positive = errno.unsigned_abs();
    ALL.iter().find(|(_, value)| u64::from(value.unsigned_abs()) == positive).map(|(name, _)| *name)
}
