//! The Debian package `cargo xtask deb` builds (its path in XVRRP_DEB, set
//! by `cargo xtask test`), installed with dpkg on this machine into a root
//! of the test's own (`--root`, maintainer scripts run chrootless with
//! DPKG_ROOT set): the host's own files and services are never touched.

use std::{collections::BTreeSet, path::Path, time::Duration};

use xvrrp_tests::{lan::Lan, require_root, sh, wait_until};

const FILES: &[&str] = &[
    "lib/systemd/system/xvrrp.service",
    "usr/sbin/xvrrp",
    "usr/share/bash-completion/completions/xvrrp",
    "usr/share/doc/xvrrp/README.md",
    "usr/share/doc/xvrrp/copyright",
    "usr/share/fish/vendor_completions.d/xvrrp.fish",
    "usr/share/man/man8/xvrrp-check.8.gz",
    "usr/share/man/man8/xvrrp-probe.8.gz",
    "usr/share/man/man8/xvrrp-run.8.gz",
    "usr/share/man/man8/xvrrp-status.8.gz",
    "usr/share/man/man8/xvrrp.8.gz",
    "usr/share/zsh/vendor-completions/_xvrrp",
];

fn dpkg(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let root_arg = format!("--root={}", root.display());
    let mut all = vec![
        root_arg.as_str(),
        "--force-script-chrootless",
        // The test root has no libc6 package in its database.
        "--force-depends",
        "--log=/dev/null",
    ];
    all.extend_from_slice(args);
    sh("dpkg", &all)
}

#[test]
fn the_package_installs_documents_runs_and_removes_without_a_running_agent() {
    require_root();
    let deb = std::env::var("XVRRP_DEB")
        .expect("XVRRP_DEB: run this through `cargo xtask test`, which builds the package");

    // What it installs, exactly.
    let listing = sh("dpkg-deb", &["-c", &deb]).unwrap();
    let files: BTreeSet<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|p| !p.ends_with('/'))
        .map(|p| p.trim_start_matches("./"))
        .collect();
    assert_eq!(files, FILES.iter().copied().collect::<BTreeSet<_>>());
    let size = std::fs::metadata(&deb).unwrap().len();
    assert!(size < 6_000_000, "the package is {size} bytes");

    let lan = Lan::new("pkg", 2).unwrap();
    let root = lan.logs.join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "etc/keepalived",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let conf = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 61\n  priority 150\n  advert_int 1\n  virtual_ipaddress {\n    10.77.0.161/24\n  }\n}\n";
    let installed_conf = root.join("etc/keepalived/keepalived.conf");
    std::fs::write(&installed_conf, conf).unwrap();
    std::fs::set_permissions(
        &installed_conf,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    // Installed beside a running keepalived: not started, and says so.
    let mut keepalived = lan
        .keepalived(1, "k", &conf.replace("priority 150", "priority 100"))
        .unwrap();
    assert!(keepalived.wait_state("VI_1", "MASTER", Duration::from_secs(30)));
    let said = dpkg(&root, &["-i", &deb]).unwrap();
    assert!(
        said.contains("keepalived is running, so xvrrp is installed but NOT enabled or started"),
        "{said}"
    );
    keepalived.proc.signal(libc::SIGTERM);
    keepalived.proc.wait_exit(Duration::from_secs(10));

    // The installed binary, its man page.
    let bin = root.join("usr/sbin/xvrrp");
    let bin = bin.to_str().unwrap();
    assert_eq!(
        sh(bin, &["--version"]).unwrap().trim(),
        format!("xvrrp {}", env!("CARGO_PKG_VERSION"))
    );
    let page = root.join("usr/share/man/man8/xvrrp-run.8.gz");
    let man = sh("man", &["-l", "-P", "cat", page.to_str().unwrap()]).unwrap();
    assert!(
        man.contains("xvrrp-run") && man.contains("--config") && man.contains("--xdp-mode"),
        "{man}"
    );

    // An agent run from the installed binary; removing the package stops it
    // (SIGTERM: priority 0 and the VIP removed), nothing else.
    let rt = lan.logs.join("rt");
    let mut agent = lan
        .host(0)
        .ns
        .spawn(
            bin,
            &[
                "run",
                "-c",
                installed_conf.to_str().unwrap(),
                "--runtime-dir",
                rt.to_str().unwrap(),
            ],
            &lan.logs.join("agent.log"),
        )
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || lan
            .host(0)
            .ns
            .exec(bin, &["status", "--runtime-dir", rt.to_str().unwrap()])
            .is_ok_and(|s| s.contains("Active"))),
        "{}",
        agent.log_text()
    );
    let bystander = lan
        .host(1)
        .ns
        .spawn("sleep", &["60"], &lan.logs.join("bystander.log"))
        .unwrap();
    dpkg(&root, &["-r", "xvrrp"]).unwrap();
    assert_eq!(
        agent.wait_exit(Duration::from_secs(1)),
        Some(0),
        "the agent survived the package's removal"
    );
    assert!(agent.log_text().contains("stopping: priority-0 adverts"));
    assert!(!Path::new(bin).exists());
    assert!(
        Path::new(&format!("/proc/{}", bystander.pid())).exists(),
        "the removal stopped another process"
    );
    let left = lan.host(0).ns.ip(&["addr", "show", "dev", "eth0"]).unwrap();
    assert!(!left.contains("10.77.0.161"), "VIP left behind: {left}");
}
