//! Sockets and rtnetlink: the I/O under the election.

pub mod advert;
pub mod iface;
pub mod netns;
pub mod packet;
pub mod probe;
pub mod rtnl;
pub mod vmac;

/// Registers a file-descriptor owner with tokio for readiness.
pub fn async_fd<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<tokio::io::unix::AsyncFd<T>> {
    // SAFETY: every caller passes an owner (socket, map) that keeps its fd
    // open and unchanged for as long as it lives inside the AsyncFd.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(inner, tokio::io::Interest::READABLE)
    }
    .map_err(|e| e.into_parts().1)
}
