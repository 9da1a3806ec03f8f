//! Chaos: a partition between the routers (both become Active: a split
//! brain the client can see), then the heal: one Active again, the split
//! brain recorded by the side that saw it (the higher Active counts it and
//! runs notify_master_rx_lower_pri; or the lower one yields to it).

use std::{net::Ipv4Addr, os::unix::fs::PermissionsExt as _, time::Duration};

use xvrrp_tests::{lan::Lan, require_root, wait_until};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);

#[test]
fn split_brain_heals_to_one_active_and_is_counted() {
    require_root();
    let lan = Lan::new("split", 3).unwrap();
    let out = lan.logs.join("lower.out");
    let script = lan.logs.join("lower.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let conf = |prio: u8| {
        format!(
            "vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {prio}\n  advert_int 1\n  notify_master_rx_lower_pri \"{} heard-lower\"\n  virtual_ipaddress {{\n    10.77.0.100/24\n  }}\n}}\n",
            script.display()
        )
    };
    let r1 = lan.xvrrp(0, "r1", &conf(150)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &conf(100)).unwrap();
    assert!(r1.wait_state("VI_1", "Active", Duration::from_secs(15)));
    assert!(r2.wait_state("VI_1", "Backup", Duration::from_secs(15)));

    // Adverts blocked both ways between the routers; the client hears both.
    lan.isolate(0, true).unwrap();
    lan.isolate(1, true).unwrap();
    assert!(
        r2.wait_state("VI_1", "Active", Duration::from_secs(10)),
        "{}",
        r2.proc.log_text()
    );
    assert_eq!(r1.state("VI_1"), "Active");
    assert!(
        wait_until(Duration::from_secs(5), || lan
            .host(2)
            .arp_who_has(VIP)
            .len()
            == 2),
        "the split brain is visible to the client"
    );

    // Heal: the higher priority answers the lower Active at once, it backs off.
    lan.isolate(0, false).unwrap();
    lan.isolate(1, false).unwrap();
    assert!(
        r2.wait_state("VI_1", "Backup", Duration::from_secs(3)),
        "{}",
        r2.proc.log_text()
    );
    assert_eq!(r1.state("VI_1"), "Active");
    assert!(wait_until(Duration::from_secs(3), || lan
        .host(2)
        .arp_who_has(VIP)
        .into_iter()
        .collect::<Vec<_>>()
        == vec![lan.host(0).mac]));
    // Which advert crosses first after the heal decides who records it: r1
    // hearing the lower Active (counted, logged, notify_master_rx_lower_pri,
    // as keepalived), or r2 hearing the higher one first and stepping down.
    let counted = r1.status().unwrap().instances[0].split_brain >= 1;
    if counted {
        assert!(
            r1.proc
                .log_text()
                .contains("split brain: 10.77.0.2 is Active too"),
            "{}",
            r1.proc.log_text()
        );
        assert!(wait_until(Duration::from_secs(3), || {
            std::fs::read_to_string(&out).is_ok_and(|t| t.contains("heard-lower"))
        }));
    } else {
        assert!(
            r2.proc
                .log_text()
                .contains("Active -> Backup: higher priority 150 from 10.77.0.1"),
            "neither side recorded the split brain:\n{}",
            r2.proc.log_text()
        );
    }
    assert_eq!(
        r1.transitions("VI_1"),
        2,
        "r1 never left Active (Initialize->Backup->Active)"
    );
}
