//! The bench's own senders put on the wire what its figures say they
//! measure: figure 13's tc fan-out (`xdpasm::fanout`) turns one frame into
//! a round of adverts, one per VRID, each once.

use std::{net::IpAddr, os::fd::AsRawFd as _, time::Duration};

use xvrrp::{net::packet::PacketSocket, wire::build};
use xvrrp_tests::{capture, lan::Lan, require_root, xdpasm};

#[test]
fn tc_fanout_sends_each_vrid_of_the_round_once() {
    require_root();
    const COUNT: u8 = 40;
    let lan = Lan::new("fanout", 2).unwrap();
    let host = lan.host(0);
    let src = IpAddr::from(host.v4);
    // A v3 advert for VRID 1 (the fan-out numbers the rest from it).
    let mut msg = vec![0x31, 1, 150, 1, 0, 1, 0, 0];
    msg.extend_from_slice(&host.v4.octets());
    let frame = build::advert_bytes(host.mac, src, 255, &msg);
    let ns = lan.host(1).ns.name.clone();
    let listener =
        std::thread::spawn(move || capture::vrrp_received(&ns, Duration::from_millis(800)));
    host.ns
        .run(move || {
            let ifindex = xvrrp::net::iface::ifindex("eth0")?;
            let _link = xdpasm::tcx_egress(
                "fanout_test",
                &xdpasm::fanout(xdpasm::FANOUT_MARK, ifindex, 14 + 20 + 1, i32::from(COUNT)),
                ifindex,
            )?;
            let sock = PacketSocket::open("eth0", false)?;
            let mark = xdpasm::FANOUT_MARK as i32;
            // SAFETY: an int option of the size given, on our own socket.
            let r = unsafe {
                libc::setsockopt(
                    sock.fd().as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_MARK,
                    (&raw const mark).cast(),
                    4,
                )
            };
            anyhow::ensure!(r == 0, "SO_MARK: {}", std::io::Error::last_os_error());
            std::thread::sleep(Duration::from_millis(200));
            sock.send(&frame)?;
            // Unmarked: leaves as it is, once.
            let plain = PacketSocket::open("eth0", false)?;
            std::thread::sleep(Duration::from_millis(100));
            plain.send(&frame)?;
            std::thread::sleep(Duration::from_millis(100));
            Ok(())
        })
        .unwrap();
    let seen = listener.join().unwrap().unwrap();
    let mut vrids: Vec<u8> = seen.iter().map(|s| s.vrrp[1]).collect();
    vrids.sort_unstable();
    let mut want: Vec<u8> = (1..=COUNT).collect();
    want.push(1); // the unmarked frame
    want.sort_unstable();
    assert_eq!(vrids, want, "VRIDs on the wire");
    assert!(
        seen.iter().all(|s| s.vrrp[2..] == msg[2..]),
        "only the VRID changes"
    );
}
