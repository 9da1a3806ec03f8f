//! The systemd unit and the agent's side of Type=notify.

use std::{os::unix::net::UnixDatagram, time::Duration};

use xvrrp_tests::{lan::Lan, require_root};

#[test]
fn unit_file_is_type_notify_with_only_the_capabilities_needed() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../packaging/xvrrp.service"
    ))
    .unwrap();
    let get = |k: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(get("Type"), "notify");
    assert!(get("ExecStart").ends_with("xvrrp run -c /etc/keepalived/keepalived.conf"));
    assert!(get("ExecStartPre").contains("xvrrp check"));
    assert_eq!(get("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(!get("WatchdogSec").is_empty());
    let caps = get("CapabilityBoundingSet");
    for needed in ["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF"] {
        assert!(caps.contains(needed), "{needed} missing: {caps}");
    }
    assert!(!caps.contains("CAP_SYS_MODULE") && !caps.contains("CAP_SYS_PTRACE"));
}

#[test]
fn agent_sends_ready_then_watchdog_pings() {
    require_root();
    let lan = Lan::new("sdnotify", 1).unwrap();
    let sock_path = lan.logs.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let conf = lan.conf(
        "r.conf",
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 9\n  priority 255\n  virtual_ipaddress {\n    10.77.0.100/24\n  }\n}\n",
    );
    let bin = xvrrp_tests::xvrrp_bin();
    let rt = lan.logs.join("rt");
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &lan.host(0).ns.name])
        .arg(&bin)
        .args([
            "run",
            "-c",
            conf.to_str().unwrap(),
            "--runtime-dir",
            rt.to_str().unwrap(),
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // `ip netns exec` execs xvrrp, so WATCHDOG_PID would be the child's pid; unset is fine.
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    for _ in 0..4 {
        match sock.recv(&mut buf) {
            Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(got.first().map(String::as_str), Some("READY=1"), "{got:?}");
    assert!(got.iter().skip(1).any(|m| m == "WATCHDOG=1"), "{got:?}");
}
