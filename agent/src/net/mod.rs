//! Sockets and rtnetlink: the I/O under the election.

pub mod packet;
