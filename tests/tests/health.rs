//! Health tracking, FAULT, notify and sync groups, as keepalived operators
//! use them: what moves the VIP, and what notify scripts receive.

use std::{
    net::Ipv4Addr,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use xvrrp_tests::{lan::Lan, require_root, wait_until};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);
const SETTLE: Duration = Duration::from_secs(15);

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn instance(name: &str, vrid: u8, prio: u8, vip: &str, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {vrid}\n  priority {prio}\n  advert_int 1\n{extra}\n  virtual_ipaddress {{\n    {vip}\n  }}\n}}\n"
    )
}

fn only(lan: &Lan, vip: Ipv4Addr, mac: [u8; 6]) {
    assert_eq!(
        lan.host(2).arp_who_has(vip).into_iter().collect::<Vec<_>>(),
        vec![mac]
    );
}

#[test]
fn failing_script_moves_the_vip_and_recovery_brings_it_back() {
    require_root();
    let lan = Lan::new("script", 3).unwrap();
    let flag = lan.logs.join("healthy");
    std::fs::write(&flag, "").unwrap();
    let chk = script(&lan.logs, "chk.sh", &format!("test -e {}", flag.display()));
    let conf = format!(
        "vrrp_script chk {{\n  script \"{}\"\n  interval 1\n  weight -100\n}}\n{}",
        chk.display(),
        instance(
            "VI_1",
            51,
            150,
            "10.77.0.100/24",
            "  track_script {\n    chk\n  }"
        )
    );
    let r1 = lan.xvrrp(0, "r1", &conf).unwrap();
    let r2 = lan
        .xvrrp(1, "r2", &instance("VI_1", 51, 100, "10.77.0.100/24", ""))
        .unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    let st = r1.status().unwrap();
    let check = st.instances[0]
        .checks
        .iter()
        .find(|c| c.name == "chk")
        .expect("check in status");
    assert_eq!((check.state.as_str(), check.weight), ("ok", 0));

    std::fs::remove_file(&flag).unwrap();
    assert!(
        r2.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r1.wait_state("VI_1", "Backup", SETTLE));
    let st = r1.status().unwrap();
    assert_eq!(st.instances[0].priority, 50, "150 - 100");
    let check = st.instances[0]
        .checks
        .iter()
        .find(|c| c.name == "chk")
        .unwrap();
    assert_eq!((check.state.as_str(), check.weight), ("failed", -100));
    only(&lan, VIP, lan.host(1).mac);

    std::fs::write(&flag, "").unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "preempt back after recovery"
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    only(&lan, VIP, lan.host(0).mac);
    let metrics = lan
        .host(0)
        .ns
        .exec(
            xvrrp_tests::xvrrp_bin().to_str().unwrap(),
            &[
                "status",
                "--metrics",
                "--runtime-dir",
                r1.runtime.to_str().unwrap(),
            ],
        )
        .unwrap();
    assert!(
        metrics.contains("xvrrp_check_runs_total{instance=\"VI_1\",check=\"chk\"}"),
        "{metrics}"
    );
    assert!(metrics.lines().any(|l| l
        .starts_with("xvrrp_check_failures_total{instance=\"VI_1\",check=\"chk\"}")
        && !l.ends_with(" 0")));
}

#[test]
fn hanging_script_is_killed_at_its_timeout_and_adverts_keep_flowing() {
    require_root();
    let lan = Lan::new("hang", 3).unwrap();
    // A duration no other process on the host uses, so that counting the
    // leftovers counts only this test's.
    let hang = script(&lan.logs, "hang.sh", "sleep 30.4127");
    let conf = format!(
        "vrrp_script hang {{\n  script \"{}\"\n  interval 1\n  timeout 2\n  weight -10\n}}\n{}",
        hang.display(),
        instance(
            "VI_1",
            51,
            150,
            "10.77.0.100/24",
            "  track_script {\n    hang\n  }"
        )
    );
    let r1 = lan.xvrrp(0, "r1", &conf).unwrap();
    let r2 = lan
        .xvrrp(1, "r2", &instance("VI_1", 51, 100, "10.77.0.100/24", ""))
        .unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let before = r2.status().unwrap().instances[0].adverts_received;
    std::thread::sleep(Duration::from_secs(6));
    let after = r2.status().unwrap().instances[0].adverts_received;
    assert!(
        after - before >= 5,
        "adverts delayed by the hanging script: {before} -> {after}"
    );
    assert_eq!(r2.transitions("VI_1"), 1, "the Backup never took over");
    let st = r1.status().unwrap();
    let c = st.instances[0]
        .checks
        .iter()
        .find(|c| c.name == "hang")
        .unwrap();
    let sc = c.script.as_ref().unwrap();
    assert!(sc.timeouts >= 2, "{sc:?}");
    // While it runs past its interval, status says so.
    let bin = xvrrp_tests::xvrrp_bin();
    assert!(wait_until(Duration::from_secs(4), || {
        lan.host(0)
            .ns
            .exec(
                bin.to_str().unwrap(),
                &["status", "--runtime-dir", r1.runtime.to_str().unwrap()],
            )
            .is_ok_and(|t| t.contains("RUNNING FOR") && t.contains("slow or hanging"))
    }));
    assert_eq!(c.weight, -10);
    assert_eq!(st.instances[0].priority, 140);
    // Killed with its process group: no pile of hanging scripts.
    let sleeps = std::process::Command::new("pgrep")
        .args(["-fc", "^sleep 30.4127$"])
        .output()
        .unwrap();
    let n: u32 = String::from_utf8_lossy(&sleeps.stdout)
        .trim()
        .parse()
        .expect("pgrep -c prints a count");
    assert!(n <= 2, "{n} hanging scripts left running");
}

#[test]
fn downed_tracked_interface_faults_and_moves_the_vip() {
    require_root();
    let lan = Lan::new("trackif", 3).unwrap();
    let ns = &lan.host(0).ns;
    ns.ip(&[
        "link", "add", "trk0", "type", "veth", "peer", "name", "trk1",
    ])
    .unwrap();
    ns.ip(&["link", "set", "trk0", "up"]).unwrap();
    ns.ip(&["link", "set", "trk1", "up"]).unwrap();
    let conf = instance(
        "VI_1",
        51,
        150,
        "10.77.0.100/24",
        "  track_interface {\n    trk0\n  }\n  notify_fault \"/bin/true\"",
    );
    let r1 = lan.xvrrp(0, "r1", &conf).unwrap();
    let r2 = lan
        .xvrrp(1, "r2", &instance("VI_1", 51, 100, "10.77.0.100/24", ""))
        .unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    ns.ip(&["link", "set", "trk0", "down"]).unwrap();
    assert!(
        r1.wait_state("VI_1", "Fault", Duration::from_secs(3)),
        "{}",
        r1.proc.log_text()
    );
    // Leaving Active for FAULT sends priority 0: the Backup takes over at once.
    assert!(r2.wait_state("VI_1", "Active", Duration::from_secs(3)));
    only(&lan, VIP, lan.host(1).mac);
    ns.ip(&["link", "set", "trk0", "up"]).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    only(&lan, VIP, lan.host(0).mac);
}

#[test]
fn track_file_weight_changes_the_priority() {
    require_root();
    let lan = Lan::new("trackfile", 3).unwrap();
    let file = lan.logs.join("prio");
    let conf = format!(
        "vrrp_track_file tf {{\n  file {}\n  weight 1\n  init_file 0\n}}\n{}",
        file.display(),
        instance(
            "VI_1",
            51,
            150,
            "10.77.0.100/24",
            "  track_file {\n    tf weight -10\n  }"
        )
    );
    let r1 = lan.xvrrp(0, "r1", &conf).unwrap();
    let r2 = lan
        .xvrrp(1, "r2", &instance("VI_1", 51, 100, "10.77.0.100/24", ""))
        .unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        "0",
        "init_file wrote it"
    );
    std::fs::write(&file, "3\n").unwrap();
    assert!(wait_until(Duration::from_secs(3), || r1
        .status()
        .is_ok_and(|s| s.instances[0].priority == 120)));
    assert_eq!(r1.state("VI_1"), "Active", "120 still beats 100");
    std::fs::write(&file, "6\n").unwrap();
    assert!(wait_until(Duration::from_secs(3), || r1
        .status()
        .is_ok_and(|s| s.instances[0].priority == 90)));
    assert!(r2.wait_state("VI_1", "Active", SETTLE), "90 loses to 100");
}

#[test]
fn notify_scripts_get_keepalived_arguments_in_order() {
    require_root();
    let lan = Lan::new("notify", 3).unwrap();
    let out = lan.logs.join("notify.out");
    let n = script(
        &lan.logs,
        "n.sh",
        &format!("echo \"$*\" >> {}", out.display()),
    );
    let fifo = lan.logs.join("notify.fifo");
    let extra = format!(
        "  notify_master \"{n} master\"\n  notify_backup \"{n} backup\"\n  notify_stop \"{n} stop\"\n  notify \"{n} generic\"\n  notify_fifo {}",
        fifo.display(),
        n = n.display()
    );
    let mut r1 = lan
        .xvrrp(
            0,
            "r1",
            &instance("VI_1", 51, 150, "10.77.0.100/24", &extra),
        )
        .unwrap();
    // Read the fifo as keepalived's users do.
    let fifo_lines = lan.logs.join("fifo.out");
    assert!(wait_until(Duration::from_secs(5), || fifo.exists()));
    let _reader = lan
        .host(0)
        .ns
        .spawn("cat", &[fifo.to_str().unwrap()], &fifo_lines)
        .unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    r1.proc.signal(libc::SIGTERM);
    assert_eq!(r1.proc.wait_exit(Duration::from_secs(10)), Some(0));
    let lines: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            "backup",
            "generic INSTANCE VI_1 BACKUP 150",
            "master",
            "generic INSTANCE VI_1 MASTER 150",
            "stop",
            "generic INSTANCE VI_1 STOP 150"
        ]
    );
    assert!(wait_until(Duration::from_secs(2), || {
        std::fs::read_to_string(&fifo_lines)
            .is_ok_and(|t| t.contains("INSTANCE \"VI_1\" MASTER 150"))
    }));
}

#[test]
fn sync_group_fails_over_as_one() {
    require_root();
    let lan = Lan::new("sync", 3).unwrap();
    let flag = lan.logs.join("ok");
    std::fs::write(&flag, "").unwrap();
    let chk = script(&lan.logs, "chk.sh", &format!("test -e {}", flag.display()));
    let out = lan.logs.join("group.out");
    let n = script(
        &lan.logs,
        "g.sh",
        &format!("echo \"$*\" >> {}", out.display()),
    );
    let group = |track: bool| {
        format!(
            "{}vrrp_sync_group G {{\n  group {{\n    VI_1\n    VI_2\n  }}\n  notify \"{}\"\n}}\n",
            if track {
                format!(
                    "vrrp_script chk {{\n  script \"{}\"\n  interval 1\n}}\n",
                    chk.display()
                )
            } else {
                String::new()
            },
            n.display()
        )
    };
    let prio = |p: u8, track: bool| {
        format!(
            "{}{}{}",
            group(track),
            instance("VI_1", 51, p, "10.77.0.100/24", ""),
            instance(
                "VI_2",
                52,
                p,
                "10.77.0.101/24",
                if track {
                    "  track_script {\n    chk\n  }"
                } else {
                    ""
                }
            )
        )
    };
    let r1 = lan.xvrrp(0, "r1", &prio(150, true)).unwrap();
    let r2 = lan.xvrrp(1, "r2", &prio(100, false)).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE) && r1.wait_state("VI_2", "Active", SETTLE));
    // VI_2's check fails (weight 0): VI_2 FAULT, and VI_1 with it.
    std::fs::remove_file(&flag).unwrap();
    assert!(
        r1.wait_state("VI_1", "Fault", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert_eq!(r1.state("VI_2"), "Fault");
    assert!(r2.wait_state("VI_1", "Active", SETTLE) && r2.wait_state("VI_2", "Active", SETTLE));
    only(&lan, VIP, lan.host(1).mac);
    only(&lan, Ipv4Addr::new(10, 77, 0, 101), lan.host(1).mac);
    std::fs::write(&flag, "").unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE) && r1.wait_state("VI_2", "Active", SETTLE));
    assert!(wait_until(Duration::from_secs(3), || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("GROUP G FAULT 0"))
    }));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("GROUP G MASTER 0"), "{text}");
}

/// The seed's health-check demo, config and script as written: nginx
/// present -> Active; nginx gone -> the script tries to restart it, fails,
/// and the instance goes to FAULT (weight 0), so the VIP moves.
#[test]
fn seed_health_check_demo_works_as_written() {
    require_root();
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../agent/src/config/fixtures/ok/seed_health_check.conf"
    ))
    .unwrap();
    let script_text = "nginxpid=$(ps -C nginx --no-header|wc -l)\nif [ $nginxpid -eq 0 ];then\n    systemctl start nginx\n    sleep 3\n    nginxpid=$(ps -C nginx --no-header|wc -l) \n    if [ $nginxpid -eq 0 ];then\n        systemctl stop keepalived\n   fi\nfi\n";
    let lan = Lan::new("seedhc", 3).unwrap();
    // The demo's script as written, at a path of the test's own (the config
    // is changed only there), and a `systemctl` stub first on the agent's
    // PATH that records what the script asks of it: nothing on this host is
    // started or stopped.
    let scripts = lan.logs.join("server/scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let script = scripts.join("check_list");
    std::fs::write(&script, format!("#!/bin/bash\n{script_text}")).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = lan.logs.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = lan.logs.join("systemctl.log");
    std::fs::write(
        bin.join("systemctl"),
        // Exit 5, "unit not loaded", as systemctl on a host without nginx
        // or keepalived units: the script's last command fails.
        format!("#!/bin/sh\necho \"$*\" >> {}\nexit 5\n", asked.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("systemctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let seed = seed.replace("/server/scripts/check_list", script.to_str().unwrap());
    // A process called nginx.
    let nginx = lan.logs.join("nginx");
    std::fs::copy("/bin/sleep", &nginx).unwrap();
    let mut fake = std::process::Command::new(&nginx)
        .arg("300")
        .spawn()
        .unwrap();
    // The other router: the same demo without the check, at a lower priority.
    let backup = seed
        .replace("priority 150", "priority 100")
        .replace("track_script  {\n    check\n   }", "");
    let r1 = lan
        .xvrrp_env(0, "r1", &seed, &[], &[("PATH", &path)])
        .unwrap();
    let r2 = lan.xvrrp(1, "r2", &backup).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    only(&lan, Ipv4Addr::new(192, 168, 1, 8), lan.host(0).mac);
    let _ = fake.kill();
    let _ = fake.wait();
    // interval 10 s, then the script's own 3 s: FAULT within ~15 s.
    assert!(
        r1.wait_state("VI_1", "Fault", Duration::from_secs(25)),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Active", Duration::from_secs(5)));
    only(&lan, Ipv4Addr::new(192, 168, 1, 8), lan.host(1).mac);
    // The script did what it says: tried nginx, then stopped "keepalived".
    let asked = std::fs::read_to_string(&asked).unwrap_or_default();
    assert_eq!(asked, "start nginx\nstop keepalived\n");
}

/// keepalived's `notify SCRIPT [user [group]]`: the words after the script
/// say who runs it, they are not arguments: the script sees keepalived's
/// four as $1–$4, and runs as that user (`nobody` here: its uid is checked).
#[test]
fn notify_script_user_group_are_who_runs_it_not_arguments() {
    require_root();
    let lan = Lan::new("notifyuser", 2).unwrap();
    let out = lan.logs.join("notify.out");
    std::fs::write(&out, "").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).unwrap();
    let n = script(
        &lan.logs,
        "n.sh",
        &format!("echo \"$# $1 $2 $3 $4 uid=$(id -u)\" >> {}", out.display()),
    );
    let extra = format!(
        "  notify {n} root\n  notify_master \"{n}\" nobody nogroup",
        n = n.display()
    );
    let r = lan
        .xvrrp(0, "r", &instance("VI_1", 51, 150, "10.77.0.100/24", &extra))
        .unwrap();
    assert!(
        r.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r.proc.log_text()
    );
    let nobody = xvrrp_tests::sh("id", &["-u", "nobody"]).unwrap();
    let want = [
        "4 INSTANCE VI_1 BACKUP 150 uid=0".to_owned(),
        format!("0     uid={}", nobody.trim()),
        "4 INSTANCE VI_1 MASTER 150 uid=0".to_owned(),
    ];
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(&out)
            .is_ok_and(|t| t.lines().count() >= 3)),
        "{}",
        r.proc.log_text()
    );
    let got: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, want);
}

/// The messages in a Maildir's `new/`: (headers, body) each, oldest first.
fn maildir_messages(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir.join("new")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|m| {
            let m = m.replace("\r\n", "\n");
            let (h, b) = m.split_once("\n\n").unwrap_or((&m, ""));
            (h.to_owned(), b.trim().to_owned())
        })
        .collect()
}

/// keepalived's smtp_alert: a mail per transition of an instance that asks
/// for it, to every notification_email, keepalived's subject and body,
/// through the smtp_server (a real SMTP server, Debian's aiosmtpd, on
/// another host); an instance without smtp_alert sends none.
#[test]
fn smtp_alerts_are_keepalived_s_mails() {
    require_root();
    let lan = Lan::new("smtp", 3).unwrap();
    let maildir = lan.logs.join("maildir");
    let _smtpd = lan
        .host(2)
        .ns
        .spawn(
            "/usr/bin/python3",
            &[
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                "10.77.0.3:2525",
                "-c",
                "aiosmtpd.handlers.Mailbox",
                maildir.to_str().unwrap(),
            ],
            &lan.logs.join("smtpd.log"),
        )
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || lan
            .host(2)
            .ns
            .exec("ss", &["-ltn"])
            .is_ok_and(|s| s.contains("10.77.0.3:2525"))),
        "aiosmtpd did not start: {}",
        std::fs::read_to_string(lan.logs.join("smtpd.log")).unwrap_or_default()
    );
    let global = "global_defs {\n  router_id LB1\n  notification_email {\n    ops@example.test\n    noc@example.test\n  }\n  \
                  notification_email_from xvrrp@lb1.example.test\n  smtp_server 10.77.0.3 2525\n  smtp_connect_timeout 5\n}\n";
    let mut r1 = lan
        .xvrrp(
            0,
            "r1",
            &(global.to_owned() + &instance("VI_1", 51, 150, "10.77.0.100/24", "  smtp_alert")),
        )
        .unwrap();
    let r2 = lan
        .xvrrp(
            1,
            "r2",
            &(global.to_owned() + &instance("VI_1", 51, 100, "10.77.0.100/24", "")),
        )
        .unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Backup", SETTLE));
    let subjects = || -> Vec<String> {
        maildir_messages(&maildir)
            .iter()
            .filter_map(|(h, _)| {
                h.lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .map(str::to_owned)
            })
            .collect()
    };
    let master = "[LB1] VRRP Instance VI_1 - Entering MASTER state";
    assert!(
        wait_until(Duration::from_secs(10), || subjects()
            .iter()
            .any(|s| s == master)),
        "no MASTER mail: {:?}\n{}",
        subjects(),
        r1.proc.log_text()
    );
    let mails = maildir_messages(&maildir);
    let (headers, body) = mails.iter().find(|(h, _)| h.contains(master)).unwrap();
    assert_eq!(body, "=> VRRP Instance is now owning VRRP VIPs <=");
    assert!(
        headers.contains("From: xvrrp@lb1.example.test"),
        "{headers}"
    );
    assert!(
        headers.contains("ops@example.test") && headers.contains("noc@example.test"),
        "both recipients in To: {headers}"
    );
    // A clean stop: r1 mails "Stopping"; r2 takes over without a mail
    // (no smtp_alert of its own, none global).
    r1.proc.signal(libc::SIGTERM);
    assert_eq!(r1.proc.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(r2.wait_state("VI_1", "Active", SETTLE));
    assert!(
        wait_until(Duration::from_secs(10), || subjects()
            .iter()
            .any(|s| s == "[LB1] VRRP Instance VI_1 - Stopping")),
        "no Stopping mail: {:?}\n{}",
        subjects(),
        r1.proc.log_text()
    );
    std::thread::sleep(Duration::from_millis(500));
    let all = subjects();
    assert!(
        all.iter()
            .all(|s| s.starts_with("[LB1] VRRP Instance VI_1 - ")),
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|s| s.as_str() == master).count(),
        1,
        "r2's takeover sent no mail, r1 mailed MASTER once: {all:?}"
    );
    for w in all.windows(2) {
        assert_ne!(w[0], w[1], "a state is mailed once: {all:?}");
    }
}

/// keepalived's vrrp_track_process, from the kernel's process events (the
/// agent runs in a namespace: the connector is opened in the initial one):
/// the Active whose tracked process stops goes to FAULT and the VIP moves;
/// with a quorum of two, one running is not enough; the process back, the
/// VIP comes back.
#[test]
fn track_process_moves_the_vip_with_the_process() {
    require_root();
    let lan = Lan::new("tproc", 3).unwrap();
    // A program with a name no other process has (its comm).
    let name = format!("xvw{}", std::process::id() % 100_000);
    let program = lan.logs.join(&name);
    std::fs::copy("/bin/sleep", &program).unwrap();
    let start = |tag: &str| {
        lan.host(0)
            .ns
            .spawn(
                program.to_str().unwrap(),
                &["600"],
                &lan.logs.join(format!("{name}-{tag}.log")),
            )
            .unwrap()
    };
    let mut first = start("a");
    let tracked = format!(
        "vrrp_track_process worker {{\n  process {name}\n}}\nvrrp_track_process pair {{\n  process {name}\n  quorum 2\n  weight -60\n}}\n"
    );
    let r1 = lan
        .xvrrp(
            0,
            "r1",
            &(tracked.clone()
                + &instance(
                    "VI_1",
                    51,
                    150,
                    "10.77.0.100/24",
                    "  track_process {\n    worker\n  }",
                )
                + &instance(
                    "VI_2",
                    52,
                    150,
                    "10.77.0.101/24",
                    "  track_process {\n    pair\n  }",
                )),
        )
        .unwrap();
    let r2 = lan
        .xvrrp(
            1,
            "r2",
            &(instance("VI_1", 51, 100, "10.77.0.100/24", "")
                + &instance("VI_2", 52, 120, "10.77.0.101/24", "")),
        )
        .unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    // One running, quorum two: 150 - 60 = 90 < 120.
    assert!(
        r2.wait_state("VI_2", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert_eq!(r1.state("VI_2"), "Backup");
    // A second one: the pair has its quorum, r1 takes VI_2.
    let second = start("b");
    assert!(
        r1.wait_state("VI_2", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    // Both stop: VI_1's weight-0 process is down, FAULT, the VIP moves.
    first.signal(libc::SIGKILL);
    drop(second);
    assert!(
        r1.wait_state("VI_1", "Fault", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r2.wait_state("VI_1", "Active", SETTLE));
    only(&lan, VIP, lan.host(1).mac);
    // Back: r1 leaves FAULT and, with the higher priority, takes the VIP.
    let _third = start("c");
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    only(&lan, VIP, lan.host(0).mac);
    let _ = first.wait_exit(Duration::from_secs(1));
}

/// An instance a reload removes is notified as keepalived notifies it:
/// DELETED (its notify_deleted script, `notify`) when it says
/// `notify_deleted`, FAULT otherwise; never STOP.
#[test]
fn a_removed_instance_is_notified_deleted_or_fault() {
    require_root();
    let lan = Lan::new("deleted", 2).unwrap();
    let out = lan.logs.join("notify.out");
    let n = script(
        &lan.logs,
        "n.sh",
        &format!("echo \"$*\" >> {}", out.display()),
    );
    let with = |deleted: &str| {
        format!(
            "  notify \"{n} generic\"\n  notify_fault \"{n} fault\"\n{deleted}",
            n = n.display()
        )
    };
    let keep = instance("VI_0", 50, 150, "10.77.0.99/24", "");
    let first = keep.clone()
        + &instance(
            "VI_1",
            51,
            150,
            "10.77.0.100/24",
            &with(&format!("  notify_deleted \"{} deleted\"", n.display())),
        )
        + &instance("VI_2", 52, 150, "10.77.0.101/24", &with(""));
    let r1 = lan.xvrrp(0, "r1", &first).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    assert!(r1.wait_state("VI_2", "Active", SETTLE));
    lan.conf("r1.conf", &keep);
    r1.proc.signal(libc::SIGHUP);
    assert!(
        r1.proc.wait_log("reload done", Duration::from_secs(5)),
        "{}",
        r1.proc.log_text()
    );
    let said = || std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || said()
            .contains("generic INSTANCE VI_2 FAULT")),
        "{}",
        said()
    );
    let text = said();
    for line in [
        "deleted",
        "generic INSTANCE VI_1 DELETED 150",
        "fault",
        "generic INSTANCE VI_2 FAULT 150",
    ] {
        assert!(text.lines().any(|l| l == line), "`{line}` missing:\n{text}");
    }
    assert!(!text.contains("STOP"), "{text}");
    assert!(!text.contains("VI_1 FAULT"), "{text}");
}

/// keepalived's interface_up_down_delays: a tracked interface's flap
/// shorter than its down delay changes nothing; a longer one faults the
/// instance once the delay has run out, and the way back waits its up delay.
#[test]
fn interface_up_down_delays_debounce_link_flaps() {
    require_root();
    let lan = Lan::new("ifdelay", 2).unwrap();
    let ns = &lan.host(0).ns;
    ns.ip(&[
        "link", "add", "trk0", "type", "veth", "peer", "name", "trk1",
    ])
    .unwrap();
    ns.ip(&["link", "set", "trk0", "up"]).unwrap();
    ns.ip(&["link", "set", "trk1", "up"]).unwrap();
    let conf = "interface_up_down_delays {\n  trk0 2 1\n}\n".to_owned()
        + &instance(
            "VI_1",
            51,
            150,
            "10.77.0.100/24",
            "  track_interface {\n    trk0\n  }",
        );
    let r1 = lan.xvrrp(0, "r1", &conf).unwrap();
    assert!(r1.wait_state("VI_1", "Active", SETTLE));
    // A flap well inside the 2 s down delay.
    ns.ip(&["link", "set", "trk0", "down"]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ns.ip(&["link", "set", "trk0", "up"]).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(r1.state("VI_1"), "Active", "{}", r1.proc.log_text());
    assert_eq!(
        r1.transitions("VI_1"),
        2,
        "Initialize -> Backup -> Active only"
    );
    // Down for good: FAULT after the delay, not before.
    ns.ip(&["link", "set", "trk0", "down"]).unwrap();
    let down_at = std::time::Instant::now();
    assert!(
        r1.wait_state("VI_1", "Fault", Duration::from_secs(6)),
        "{}",
        r1.proc.log_text()
    );
    assert!(
        down_at.elapsed() >= Duration::from_millis(1900),
        "FAULT before the down delay ran out: {:?}",
        down_at.elapsed()
    );
    ns.ip(&["link", "set", "trk0", "up"]).unwrap();
    assert!(
        r1.wait_state("VI_1", "Active", SETTLE),
        "{}",
        r1.proc.log_text()
    );
    assert!(r1
        .proc
        .log_text()
        .contains("interface_up_down_delays: up counts now"));
}
