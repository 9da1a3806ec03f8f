//! The config reader against its corpus: every VRRP config in fixtures/ok
//! (the seed's demos, corpus_* files covering what keepalived's shipped
//! VRRP samples use) loads; every file in fixtures/bad
//! gives exactly the diagnostics in its `.expected` golden file
//! (regenerate with XVRRP_BLESS=1, then review the diff).

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::Duration,
};

use super::*;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new("src/config/fixtures").join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    files
}

fn opts_for(path: &Path) -> LoadOptions {
    // The conditional corpus file needs a config id, as `keepalived -i north`.
    let id = path
        .to_string_lossy()
        .contains("conditional")
        .then(|| "north".to_owned());
    LoadOptions {
        config_id: id,
        ..Default::default()
    }
}

#[test]
fn every_config_of_the_corpus_loads() {
    let files = fixtures("ok");
    assert!(files.len() >= 9, "corpus missing: {files:?}");
    for f in files {
        let (cfg, diags) = load(&f, &opts_for(&f));
        assert!(!diags.has_errors(), "{}:\n{diags}", f.display());
        let cfg = cfg.unwrap();
        assert!(
            !cfg.instances.is_empty() || !cfg.virtual_servers.is_empty(),
            "{} has neither an instance nor a virtual server",
            f.display()
        );
        for i in &cfg.instances {
            assert!((1..=255).contains(&i.vrid));
            assert!(!i.vips.is_empty());
        }
    }
}

#[test]
fn broken_configs_give_their_golden_diagnostics() {
    let bless = std::env::var_os("XVRRP_BLESS").is_some();
    let mut failures = Vec::new();
    let bad = fixtures("bad");
    assert!(bad.len() >= 10);
    for f in bad {
        let (cfg, diags) = load(&f, &LoadOptions::default());
        assert!(
            cfg.is_none() && diags.has_errors(),
            "{} loaded",
            f.display()
        );
        let got = check::table(None, &diags);
        let golden = f.with_extension("expected");
        if bless {
            fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failures.push(format!("--- {}\n{got}", golden.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "diagnostics differ from the goldens (XVRRP_BLESS=1 to regenerate, then review):\n{}",
        failures.join("\n")
    );
}

#[test]
fn seed_demo_reads_as_keepalived_would() {
    let (cfg, diags) = load(
        Path::new("src/config/fixtures/ok/seed_demo.conf"),
        &LoadOptions::default(),
    );
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    assert!(cfg.global.skip_check_adv_addr);
    assert_eq!(
        cfg.global.garp_interval,
        Duration::ZERO,
        "keepalived #2319: 0 accepted"
    );
    assert_eq!(cfg.global.router_id.as_deref(), Some("LVS_DEVEL"));
    let i = &cfg.instances[0];
    assert_eq!(
        (i.name.as_str(), i.interface.as_str(), i.vrid, i.priority),
        ("VI_1", "eno1", 51, 100)
    );
    assert_eq!(i.state, model::InitialState::Master);
    assert_eq!(i.version, 2);
    assert_eq!(
        i.auth,
        Some(model::Authentication {
            kind: model::AuthType::Pass,
            pass: "admin".into()
        })
    );
    assert_eq!(i.vips[0].addr.to_string(), "192.168.1.8");
    assert_eq!(i.vips[0].prefix, 24);
    let p = proto_config::router_config(i, &cfg.global, "192.168.1.2".parse().unwrap());
    assert_eq!(p.auth, crate::wire::vrrp::Auth::pass("admin"));
    assert_eq!(p.version, crate::wire::vrrp::Version::V2);
    assert!(p.accept, "accept on without vrrp_strict");
    assert!(p.skip_check_adv_addr);
}

#[test]
fn seed_health_check_demo_tracks_its_script() {
    let (cfg, diags) = load(
        Path::new("src/config/fixtures/ok/seed_health_check.conf"),
        &LoadOptions::default(),
    );
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let s = &cfg.scripts["check"];
    assert_eq!(
        s.script.as_ref().unwrap().argv,
        ["/server/scripts/check_list"]
    );
    assert_eq!(s.interval, Duration::from_secs(10));
    assert_eq!(
        s.timeout,
        Duration::from_secs(10),
        "timeout defaults to interval"
    );
    assert_eq!((s.weight, s.rise, s.fall), (0, 1, 1));
    assert_eq!(cfg.instances[0].track_scripts[0].name, "check");
    assert_eq!(cfg.instances[0].priority, 150);
}

#[test]
fn includes_definitions_and_layouts() {
    let (cfg, diags) = load(
        Path::new("src/config/fixtures/ok/with_includes.conf"),
        &LoadOptions::default(),
    );
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    assert_eq!(cfg.files.len(), 3, "main + two included: {:?}", cfg.files);
    assert_eq!(cfg.global.router_id.as_deref(), Some("lb 01"));
    let vi = cfg
        .instances
        .iter()
        .find(|i| i.name == "VI_eth0")
        .expect("${IFACE} substituted");
    assert_eq!(vi.version, 3, "global vrrp_version");
    assert_eq!(vi.advert_int_cs, 5);
    let v = &vi.vips[0];
    assert_eq!(v.addr.to_string(), "192.0.2.42");
    assert_eq!(v.dev.as_deref(), Some("eth0"));
    assert_eq!(v.label.as_deref(), Some("eth0:vip"));
    assert_eq!(v.brd.map(|b| b.to_string()).as_deref(), Some("192.0.2.255"));
    assert_eq!(v.scope.as_deref(), Some("global"));
    assert_eq!(vi.vips_excluded[0].prefix, 64);
    assert_eq!(vi.track_scripts[0].weight, Some(-30));
    assert_eq!(
        vi.notify.generic.as_ref().unwrap().argv,
        ["/bin/echo", "two words", "arg"]
    );
    let s = &cfg.scripts["chk_included"];
    assert_eq!(
        (s.weight, s.weight_reverse, s.rise, s.fall),
        (-10, true, 3, 2)
    );
    assert!(
        cfg.instances
            .iter()
            .any(|i| i.name == "FROM_INCLUDE" && i.vips.len() == 1),
        "one-line block"
    );
}

#[test]
fn conditional_lines_follow_the_config_id() {
    let path = Path::new("src/config/fixtures/ok/corpus_conditional.conf");
    let with = |id: &str| {
        load(
            path,
            &LoadOptions {
                config_id: Some(id.into()),
                ..Default::default()
            },
        )
        .0
        .unwrap()
    };
    let (north, south) = (with("north"), with("south"));
    assert_eq!(north.instances[0].priority, 160);
    assert_eq!(south.instances[0].priority, 90);
    assert!(north.scripts["check_north_path"]
        .script
        .as_ref()
        .unwrap()
        .text
        .contains("north"));
    assert_eq!(north.global.net_namespace.as_deref(), Some("lb_north"));
    assert_eq!(south.global.net_namespace.as_deref(), Some("lb_south"));
    assert_eq!(north.instances[0].advert_int_cs, 1000);
}

/// The corpus covers what keepalived's shipped VRRP samples use (mail,
/// authentication, local checks, sync groups and notify, static and
/// virtual routes and rules, conditional lines, namespaces, vmacs): each
/// loads as `xvrrp check` would (exit 0), and no warning says a keyword is
/// unknown or not supported except SNMP and BFD, which xvrrp does not do.
#[test]
fn the_corpus_loads_with_nothing_unsupported_but_snmp_and_bfd() {
    let corpus: Vec<PathBuf> = fixtures("ok")
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("corpus_"))
        .collect();
    assert!(corpus.len() >= 5, "{corpus:?}");
    let mut keywords_seen = std::collections::BTreeSet::new();
    for f in &corpus {
        let (cfg, diags) = load(f, &opts_for(f));
        assert!(cfg.is_some(), "{}: {diags}", f.display());
        for d in diags.warnings() {
            let text = d.to_string();
            let allowed = ["snmp", "traps", "bfd"].iter().any(|k| text.contains(k));
            // What docs/keepalived.md lists as not run or forwarded yet.
            let allowed = allowed
                || f.to_string_lossy().contains("not_yet")
                    && (text.contains("not run by xvrrp yet")
                        || text.contains("not forwarded yet"));
            assert!(
                allowed || !(text.contains("not supported") || text.contains("unknown keyword")),
                "{}: {text}",
                f.display()
            );
        }
        for line in fs::read_to_string(f).unwrap().lines() {
            let line = line.trim_start();
            let line = line.strip_prefix('@').map_or(line, |l| {
                l.split_once(char::is_whitespace)
                    .map_or("", |(_, r)| r.trim_start())
            });
            if let Some(word) = line.split_whitespace().next() {
                keywords_seen.insert(word.to_owned());
            }
        }
    }
    // What keepalived's VRRP samples use, all of it in the corpus.
    for kw in [
        "notification_email",
        "notification_email_from",
        "smtp_server",
        "smtp_connect_timeout",
        "router_id",
        "smtp_alert",
        "authentication",
        "auth_type",
        "auth_pass",
        "advert_int",
        "vrrp_script",
        "script",
        "interval",
        "timeout",
        "weight",
        "rise",
        "fall",
        "track_script",
        "track_interface",
        "vrrp_sync_group",
        "group",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "virtual_routes",
        "virtual_rules",
        "net_namespace",
        "use_vmac",
        "version",
        "nopreempt",
        "garp_master_delay",
        "state",
        "priority",
        "virtual_router_id",
        "virtual_ipaddress",
        // … and what their virtual_server samples use.
        "virtual_server",
        "virtual_server_group",
        "real_server",
        "delay_loop",
        "lb_algo",
        "lb_kind",
        "protocol",
        "persistence_timeout",
        "quorum",
        "hysteresis",
        "sorry_server",
        "inhibit_on_failure",
        "alpha",
        "omega",
        "virtualhost",
        "notify_up",
        "notify_down",
        "connect_timeout",
        "connect_port",
        "bindto",
        "retry",
        "nb_get_retry",
        "delay_before_retry",
        "HTTP_GET",
        "SSL_GET",
        "TCP_CHECK",
        "MISC_CHECK",
        "misc_path",
        "misc_dynamic",
        "url",
        "path",
        "digest",
        "status_code",
    ] {
        assert!(keywords_seen.contains(kw), "the corpus never uses `{kw}`");
    }
}

#[test]
fn defaults_follow_keepalived() {
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n state MASTER\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n\
                vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n fd00::1\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let a = &cfg.instances[0];
    assert_eq!(a.priority, 255, "state MASTER without priority = owner");
    assert_eq!((a.version, a.advert_int_cs, a.preempt), (2, 100, true));
    assert_eq!(a.vips[0].prefix, 32);
    let b = &cfg.instances[1];
    assert_eq!((b.priority, b.version), (100, 3), "IPv6 instances are v3");
    assert_eq!(b.vips[0].prefix, 128);
    let g = &cfg.global;
    assert_eq!(
        (
            g.garp_master_delay,
            g.garp_master_repeat,
            g.garp_master_refresh
        ),
        (Duration::from_secs(5), 5, None)
    );
}

#[test]
fn v2_fractional_advert_int_is_rounded_with_a_warning() {
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n advert_int 1.4\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    assert_eq!(cfg.unwrap().instances[0].advert_int_cs, 100);
    assert!(diags
        .warnings()
        .any(|d| d.message.contains("whole seconds")));
}

/// A scratch directory under target/, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/config-tests")
            .join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(p)
    }

    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const MINIMAL: &str = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n";

#[test]
fn seed_q3_config_file_permissions_are_refused_with_the_fix() {
    let s = Scratch::new("perms");
    let writable = s.file("writable.conf", MINIMAL, 0o666);
    let (_, d) = load(&writable, &LoadOptions::default());
    assert_eq!(
        d.errors().next().unwrap().fix.as_deref(),
        Some(format!("chmod go-w {}", writable.display()).as_str())
    );
    let exec = s.file("exec.conf", MINIMAL, 0o755);
    let (_, d) = load(&exec, &LoadOptions::default());
    let e = d.errors().next().unwrap();
    assert!(e.message.contains("not a regular non-executable file"));
    assert_eq!(
        e.fix.as_deref(),
        Some(format!("chmod 644 {}", exec.display()).as_str())
    );
    let (_, d) = load(&s.0, &LoadOptions::default());
    assert!(d
        .errors()
        .next()
        .unwrap()
        .message
        .contains("not a regular file"));
    let (_, d) = load(&s.0.join("missing.conf"), &LoadOptions::default());
    assert!(d.has_errors());
    // An included file is checked too.
    s.file("inc.conf", "", 0o646);
    let main = s.file("main.conf", &format!("include inc.conf\n{MINIMAL}"), 0o644);
    let (_, d) = load(&main, &LoadOptions::default());
    assert!(
        d.errors().any(|e| e
            .fix
            .as_deref()
            .is_some_and(|f| f.starts_with("chmod go-w") && f.ends_with("inc.conf"))),
        "{d}"
    );
    let ok = s.file("ok.conf", MINIMAL, 0o644);
    assert!(!load(&ok, &LoadOptions::default()).1.has_errors());
}

#[test]
fn unsafe_scripts_follow_keepalived_s_script_security() {
    let s = Scratch::new("scripts");
    let script = s.file("check.sh", "#!/bin/sh\nexit 0\n", 0o757);
    let conf = |p: &Path, security: bool| {
        format!(
            "{}vrrp_script chk {{\n script \"{}\"\n}}\n{}",
            if security {
                "global_defs {\n enable_script_security\n}\n"
            } else {
                ""
            },
            p.display(),
            MINIMAL
                .replace(
                    "virtual_ipaddress",
                    "track_script {\n chk\n }\n notify_master \"CHECK\"\n virtual_ipaddress"
                )
                .replace("CHECK", &p.display().to_string())
        )
    };
    // Without enable_script_security keepalived runs it (SECURITY
    // VIOLATION): a warning with the repair; --strict refuses it.
    let main = s.file("a.conf", &conf(&script, false), 0o644);
    let (cfg, d) = load(&main, &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{d}"));
    assert_eq!(cfg.instances[0].track_scripts.len(), 1);
    let w = d
        .warnings()
        .find(|w| w.message.contains("writable by non-root"))
        .unwrap_or_else(|| panic!("no warning: {d}"));
    assert!(w.message.contains("SECURITY VIOLATION"), "{w}");
    assert_eq!(
        w.fix.as_deref(),
        Some(format!("chmod go-w {}", script.display()).as_str())
    );
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    assert!(load(&main, &strict).0.is_none());
    // With it, the script is disabled: not tracked, the notify not run.
    let main = s.file("b.conf", &conf(&script, true), 0o644);
    let (cfg, d) = load(&main, &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{d}"));
    assert!(cfg.instances[0].track_scripts.is_empty(), "{d}");
    assert!(cfg.instances[0].notify.master.is_none(), "{d}");
    assert!(d.to_string().contains("disabled (not run)"), "{d}");
    // Safe script, unsafe directory.
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&s.0, fs::Permissions::from_mode(0o777)).unwrap();
    let (_, d) = load(&main, &LoadOptions::default());
    assert!(
        d.to_string()
            .contains(&format!("chmod go-w {}", s.0.display())),
        "{d}"
    );
    fs::set_permissions(&s.0, fs::Permissions::from_mode(0o755)).unwrap();
    let (cfg, d) = load(&main, &LoadOptions::default());
    assert_eq!(cfg.unwrap().instances[0].track_scripts.len(), 1, "{d}");
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let (_, d) = load(
        Path::new("src/config/fixtures/bad/ranges.conf"),
        &LoadOptions::default(),
    );
    assert!(d.errors().count() >= 6, "{d}");
}

#[test]
fn parser_never_panics_on_arbitrary_text() {
    use proptest::prelude::*;
    proptest!(ProptestConfig::with_cases(500), |(text in "[a-z_ {}\"!#$@^0-9./:\n\t]{0,300}")| {
        let _ = parse_str(&text, Path::new("fuzz.conf"), &LoadOptions { config_id: Some("a".into()), ..Default::default() });
    });
}

#[test]
fn mixed_v2_v3_is_a_v3_ipv4_whole_second_instance_speaking_both() {
    let inst = |extra: &str, vip: &str| {
        format!("vrrp_instance M {{\n interface eth0\n virtual_router_id 7\n {extra}\n mixed_v2_v3\n virtual_ipaddress {{\n {vip}\n }}\n}}\n")
    };
    let (cfg, diags) = parse_str(
        &inst("version 3\n advert_int 2", "192.0.2.1"),
        Path::new("mem.conf"),
        &LoadOptions::default(),
    );
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let primary = "192.0.2.9".parse().unwrap();
    let proto = proto_config::router_config(&cfg.instances[0], &cfg.global, primary);
    assert!(
        proto.mixed_v2,
        "RFC 9568 §8.4 mixed mode reaches the election"
    );
    for (extra, vip, says) in [
        ("version 2", "192.0.2.1", "not `version 3`"),
        ("version 3\n advert_int 0.5", "192.0.2.1", "whole seconds"),
        ("version 3", "fe80::1", "IPv6"),
    ] {
        let (cfg, diags) = parse_str(
            &inst(extra, vip),
            Path::new("mem.conf"),
            &LoadOptions::default(),
        );
        assert!(cfg.is_none(), "{extra} {vip}: accepted");
        assert!(
            diags.to_string().contains("mixed_v2_v3") && diags.to_string().contains(says),
            "{extra} {vip}: {diags}"
        );
    }
}

/// keepalived's old default config (its VRRP part) runs as keepalived runs
/// it: vrrp_strict's fix-ups are warnings, and `--strict` refuses them.
#[test]
fn keepalived_old_default_config_runs_with_its_fix_ups() {
    let path = Path::new("src/config/fixtures/ok/keepalived_old_default_vrrp.conf");
    let text = fs::read_to_string(path).unwrap();
    let (cfg, diags) = parse_str(&text, path, &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let i = &cfg.instances[0];
    assert_eq!(
        i.state,
        model::InitialState::Backup,
        "MASTER below 255 starts BACKUP"
    );
    assert!(i.auth.is_none(), "authentication ignored under vrrp_strict");
    let said = diags.to_string();
    for w in [
        "starting BACKUP, as keepalived does",
        "vrrp_strict does not support authentication",
    ] {
        assert!(said.contains(w), "{said}");
    }
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let (cfg, diags) = parse_str(&text, path, &strict);
    assert!(cfg.is_none() && diags.errors().count() >= 2, "{diags}");
}

/// A keyword keepalived does not know (or xvrrp does not) is a warning, as
/// keepalived logs it and carries on; `--strict` makes it an error.
#[test]
fn unknown_keywords_are_warnings_and_errors_under_strict() {
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n priorty 100\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    assert!(cfg.is_some(), "{diags}");
    assert!(diags
        .warnings()
        .any(|d| d.message.contains("priorty")
            && d.fix.as_deref() == Some("did you mean `priority`?")));
    let strict = LoadOptions {
        strict: true,
        ..Default::default()
    };
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &strict);
    assert!(
        cfg.is_none() && diags.errors().any(|d| d.message.contains("priorty")),
        "{diags}"
    );
}

/// keepalived replaces only the `$NAME`s a config defines: `$HOME`, `$1`,
/// awk's `$2` in a script line stay as written.
#[test]
fn undefined_dollar_names_stay_as_written() {
    let text = "$WHO=ops\nvrrp_script chk {\n script \"/bin/sh -c 'echo $WHO $HOME $1 ${UNSET}' | awk '{print $2}'\"\n}\n\
                vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n }\n track_script {\n chk\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let script = cfg.scripts["chk"].script.as_ref().unwrap();
    assert_eq!(
        script.argv.join(" "),
        "/bin/sh -c echo ops $HOME $1 ${UNSET} | awk {print $2}"
    );
}

/// Without `-i`, keepalived's config id is the host name's first label:
/// `@HOST` lines apply on that host, other hosts' lines do not.
#[test]
fn config_id_defaults_to_the_host_names_first_label() {
    let host = nix::unistd::gethostname().unwrap();
    let label = host.to_string_lossy().split('.').next().unwrap().to_owned();
    let text = format!(
        "vrrp_instance A {{\n interface eth0\n virtual_router_id 1\n @{label} priority 200\n @not-{label} priority 50\n virtual_ipaddress {{\n 192.0.2.1\n }}\n}}\n"
    );
    let (cfg, diags) = parse_str(&text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    assert_eq!(cfg.instances[0].priority, 200, "{label}");
}

/// docs/keepalived.md lists every keyword the reader knows: each one it
/// implements as works/differs in its block, each it does not as ignored
/// (refused for LVS), and nothing else.
#[test]
fn the_keyword_table_matches_the_reader() {
    let doc = fs::read_to_string("../docs/keepalived.md").unwrap();
    let rows: Vec<(String, String, String)> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() >= 5 && cells[1].starts_with('`')).then(|| {
                (
                    cells[1].trim_matches('`').to_owned(),
                    cells[2].to_owned(),
                    cells[3].to_owned(),
                )
            })
        })
        .collect();
    let mut expected = 0;
    for (block, keywords) in typed::BLOCKS {
        for kw in *keywords {
            expected += 1;
            assert!(
                rows.iter()
                    .any(|(k, b, s)| k == kw && b == block && (s == "works" || s == "differs")),
                "{kw} ({block}) is implemented but not listed as works/differs"
            );
        }
    }
    for (kw, what) in keywords::UNSUPPORTED {
        if typed::BLOCKS.iter().any(|(_, ks)| ks.contains(kw)) {
            continue;
        }
        expected += 1;
        let _ = what;
        let status = "ignored";
        assert!(
            rows.iter().any(|(k, _, s)| k == kw && s == status),
            "{kw} should be listed as {status}"
        );
    }
    assert_eq!(
        rows.len(),
        expected,
        "rows for keywords the reader does not know"
    );
}

/// keepalived's virtual_routes lines (ip-route syntax).
#[test]
fn virtual_routes_read_as_keepalived_writes_them() {
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1/24\n }\n virtual_routes {\n\
                src 192.0.2.1 to 198.51.100.0/24 via 192.0.2.254 dev eth0 metric 20\n\
                blackhole 203.0.113.0/24\n\
                2001:db8::/64 dev eth0 table 100 scope link no_track\n\
                }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let r = &cfg.instances[0].virtual_routes;
    assert_eq!(r.len(), 3);
    assert_eq!(
        (
            r[0].dst.to_string(),
            r[0].prefix,
            r[0].via.map(|v| v.to_string()),
            r[0].src.map(|v| v.to_string()),
            r[0].metric,
            r[0].dev.as_deref()
        ),
        (
            "198.51.100.0".into(),
            24,
            Some("192.0.2.254".into()),
            Some("192.0.2.1".into()),
            Some(20),
            Some("eth0")
        )
    );
    assert_eq!(r[1].kind, model::RouteKind::Blackhole);
    assert_eq!(
        (r[2].table, r[2].scope, r[2].prefix),
        (Some(100), Some(253), 64)
    );
    // A line keepalived cannot read is skipped with a warning, as keepalived.
    let bad = text.replace("metric 20", "mtu 1400");
    let (cfg, diags) = parse_str(&bad, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    assert_eq!(cfg.instances[0].virtual_routes.len(), 2);
    assert!(diags.to_string().contains("route option `mtu`"), "{diags}");
}

/// keepalived's virtual_rules lines (ip-rule syntax).
#[test]
fn virtual_rules_read_as_keepalived_writes_them() {
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1/24\n }\n virtual_rules {\n\
                from 192.0.2.0/24 table 100 priority 1000\n\
                to 198.51.100.0/24 iif eth0 fwmark 7 lookup 101\n\
                from all prohibit\n\
                }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let r = &cfg.instances[0].virtual_rules;
    assert_eq!(r.len(), 3);
    assert_eq!(
        (
            r[0].from.map(|(a, l)| (a.to_string(), l)),
            r[0].table,
            r[0].priority
        ),
        (Some(("192.0.2.0".into(), 24)), Some(100), Some(1000))
    );
    assert_eq!(
        (r[1].iif.as_deref(), r[1].fwmark, r[1].table),
        (Some("eth0"), Some(7), Some(101))
    );
    assert_eq!((r[2].kind, r[2].from), (model::RouteKind::Prohibit, None));
    let (cfg, diags) = parse_str(
        &text.replace("lookup 101", "goto 5"),
        Path::new("mem.conf"),
        &LoadOptions::default(),
    );
    assert_eq!(
        cfg.map(|c| c.instances[0].virtual_rules.len()),
        Some(2),
        "skipped, as keepalived: {diags}"
    );
    assert!(diags.to_string().contains("rule option `goto`"), "{diags}");
}

/// keepalived's static_ipaddress / static_routes / static_rules, and a
/// static_track_group making its instances track the lines' interfaces.
#[test]
fn static_entries_and_track_groups_read_as_keepalived_writes_them() {
    let text = "global_defs {\n default_interface lan0\n}\n\
                static_ipaddress {\n 192.0.2.16/24 dev eth1 scope link track_group G\n 192.0.2.17\n}\n\
                static_routes {\n 198.51.100.0/24 via 192.0.2.254 dev eth2 track_group G\n 203.0.113.0/24 mtu 1400\n}\n\
                static_rules {\n from 192.0.2.0/24 table 100 iif eth3 track_group G\n}\n\
                static_track_group G {\n group {\n A\n NOPE\n }\n}\n\
                vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1/24 track_group G\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let st = &cfg.statics;
    assert_eq!(
        (st.addresses.len(), st.routes.len(), st.rules.len()),
        (2, 1, 1),
        "the unreadable route is skipped, as keepalived: {diags}"
    );
    assert_eq!(st.addresses[0].scope.as_deref(), Some("link"));
    assert_eq!(st.addresses[1].dev, None);
    assert_eq!(cfg.global.static_interface(), "lan0");
    let tracked: Vec<&str> = cfg.instances[0]
        .track_interfaces
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(tracked, ["eth1", "eth2", "eth3"]);
    let text_of = diags.to_string();
    assert!(text_of.contains("route option `mtu`"), "{text_of}");
    assert!(
        text_of.contains("vrrp instance NOPE in static track group G does not exist"),
        "{text_of}"
    );
    assert!(
        text_of.contains("`track_group` belongs to static_ipaddress"),
        "{text_of}"
    );
    assert!(!diags.has_errors(), "{text_of}");
    assert!(cfg.instances[0].vips[0].track_group.is_none());
    // Without default_interface, keepalived's default: eth0.
    assert_eq!(model::Global::default().static_interface(), "eth0");
}

/// A reload compares routes and rules for what they set: moved lines are
/// the same entries.
#[test]
fn entries_compare_without_their_place_in_the_file() {
    let a = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1/24\n }\n virtual_routes {\n 198.51.100.0/24 via 192.0.2.254\n }\n}\n";
    let b = a.replace("virtual_routes {\n", "virtual_routes {\n\n\n");
    let load = |t: &str| {
        parse_str(t, Path::new("mem.conf"), &LoadOptions::default())
            .0
            .expect("loads")
    };
    let (ra, rb) = (
        load(a).instances[0].virtual_routes.clone(),
        load(&b).instances[0].virtual_routes.clone(),
    );
    assert_ne!(ra, rb, "positions differ");
    assert!(model::same_entries(&ra, &rb));
    assert!(model::minus(&ra, &rb).is_empty());
}

/// keepalived's mail settings and who alerts: the instance's own
/// smtp_alert, else smtp_alert_vrrp, else smtp_alert, else none.
#[test]
fn smtp_settings_read_as_keepalived_writes_them() {
    let text = "global_defs {\n notification_email {\n ops@example.com\n not an address\n }\n notification_email_from \"LB <lb@example.com>\"\n\
                smtp_server 192.0.2.25\n smtp_connect_timeout 7\n smtp_helo_name lb1.example.com\n no_email_faults\n}\n\
                vrrp_instance A {\n interface eth0\n virtual_router_id 1\n smtp_alert\n virtual_ipaddress {\n 192.0.2.1/24\n }\n}\n\
                vrrp_instance B {\n interface eth0\n virtual_router_id 2\n smtp_alert off\n virtual_ipaddress {\n 192.0.2.2/24\n }\n}\n\
                vrrp_instance C {\n interface eth0\n virtual_router_id 3\n virtual_ipaddress {\n 192.0.2.3/24\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let m = &cfg.global.smtp;
    assert_eq!(m.server, Some(("192.0.2.25".into(), 25)));
    assert_eq!(m.to, ["ops@example.com"]);
    assert!(
        diags.to_string().contains("`not` is not a mail address"),
        "{diags}"
    );
    assert_eq!(m.from.as_deref(), Some("LB <lb@example.com>"));
    assert_eq!(m.connect_timeout, std::time::Duration::from_secs(7));
    assert_eq!(m.helo_name.as_deref(), Some("lb1.example.com"));
    assert!(m.no_email_faults);
    let alerts: Vec<bool> = cfg
        .instances
        .iter()
        .map(|i| m.alerts(i.notify.smtp_alert))
        .collect();
    assert_eq!(alerts, [true, false, false]);
    let mut g = m.clone();
    g.alert = Some(true);
    assert!(g.alerts(None), "global smtp_alert");
    g.alert_vrrp = Some(false);
    assert!(!g.alerts(None), "smtp_alert_vrrp before smtp_alert");
    g.server = None;
    assert!(!g.alerts(Some(true)), "no server, no mail");
}

/// keepalived's parameter features (keepalived.conf(5)): substitution at
/// use, multiline definitions, ~SEQ and ~LST, predefined definitions, a
/// definition that is a condition.
#[test]
fn definitions_sequences_and_lists_as_keepalived_expands_them() {
    let text = "$ADDRESS_BASE=192.0.${SUB}\n\
                $SUB=2\n\
                $IF_MAIN=@main\n\
                $INSTANCE= \\\n\
                vrrp_instance VI_${NUM} { \\\n\
                  interface eth${NUM} \\\n\
                  virtual_router_id ${NUM} \\\n\
                  $IF_MAIN priority 200 \\\n\
                  notify \"/bin/echo ${_INSTANCE} ${_HASH}${NUM} ${_ENV XVRRP_TEST_ENV}\" \\\n\
                  virtual_ipaddress { \\\n\
                    ${ADDRESS_BASE}.${NUM}/24 \\\n\
                  } \\\n\
                }\n\
                ~SEQ(NUM, 1, 3) $INSTANCE\n\
                $SUB=3\n\
                vrrp_instance L {\n interface eth9\n virtual_router_id 99\n virtual_ipaddress {\n\
                ~LST({A, B}, {10, 1}, {20, 2}) ${ADDRESS_BASE}.${A}${B}/24\n }\n}\n";
    // SAFETY: a variable only this test reads.
    unsafe { std::env::set_var("XVRRP_TEST_ENV", "from-env") };
    let opts = LoadOptions {
        config_id: Some("main".into()),
        strict: false,
    };
    let (cfg, diags) = parse_str(text, Path::new("/etc/keepalived/mem.conf"), &opts);
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let names: Vec<(&str, &str, u8, u8, String)> = cfg
        .instances
        .iter()
        .map(|i| {
            (
                i.name.as_str(),
                i.interface.as_str(),
                i.vrid,
                i.priority,
                i.vips
                    .iter()
                    .map(|v| format!("{}/{}", v.addr, v.prefix))
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("VI_1", "eth1", 1, 200, "192.0.2.1/24".into()),
            ("VI_2", "eth2", 2, 200, "192.0.2.2/24".into()),
            ("VI_3", "eth3", 3, 200, "192.0.2.3/24".into()),
            ("L", "eth9", 99, 100, "192.0.3.101/24,192.0.3.202/24".into()),
        ]
    );
    assert_eq!(
        cfg.instances[1].notify.generic.as_ref().unwrap().argv,
        ["/bin/echo", "main", "#2", "from-env"]
    );
    // Another config id: `$IF_MAIN` lines drop out.
    let (cfg, _) = parse_str(
        text,
        Path::new("/etc/keepalived/mem.conf"),
        &LoadOptions {
            config_id: Some("backup".into()),
            strict: false,
        },
    );
    assert_eq!(cfg.unwrap().instances[0].priority, 100);
    // `$X` is replaced only before a blank, `,`, `)` or the end; `${_PWD}`
    // is the file's directory.
    let (cfg, diags) = parse_str(
        "$S=x\nvrrp_script C {\n script \"${_PWD}/check $S $S.y $HOME\"\n}\n",
        Path::new("/etc/keepalived/mem.conf"),
        &LoadOptions::default(),
    );
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    assert_eq!(
        cfg.scripts["C"].script.as_ref().unwrap().argv,
        ["/etc/keepalived/check", "x", "$S.y", "$HOME"]
    );
    // A definition that uses itself is an error, not a hang.
    let (cfg, diags) = parse_str(
        "$A=$A b\n$A\n",
        Path::new("mem.conf"),
        &LoadOptions::default(),
    );
    assert!(
        cfg.is_none() && diags.to_string().contains("expand too deep"),
        "{diags}"
    );
}

/// keepalived's include variants and brace globs.
#[test]
fn include_variants_check_what_keepalived_checks() {
    let dir = std::env::temp_dir().join(format!("xvrrp-incl-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    };
    write("conf.d/a.conf", "vrrp_script A {\n script /bin/true\n}\n");
    write("conf.d/b.conf", "vrrp_script B {\n script /bin/true\n}\n");
    let load = |line: &str| parse_str(line, &dir.join("main.conf"), &LoadOptions::default());
    let (cfg, diags) = load("include conf.d/{a,b}.conf\n");
    assert_eq!(
        cfg.unwrap_or_else(|| panic!("{diags}")).scripts.len(),
        2,
        "brace alternatives"
    );
    // A plain include of nothing is a warning (keepalived says nothing);
    // includer/includem/includeb say what they check.
    let (cfg, diags) = load("include conf.d/none*.conf\n");
    assert!(cfg.is_some() && diags.warnings().count() == 1, "{diags}");
    let (cfg, diags) = load("includem conf.d/none*.conf\n");
    assert!(cfg.is_none(), "{diags}");
    let (cfg, diags) = load("includeb conf.d/{a,none}.conf\n");
    assert!(
        cfg.is_none() && diags.to_string().contains("alternative"),
        "{diags}"
    );
    let (cfg, diags) = load("includea conf.d/*.conf\n");
    assert_eq!(cfg.unwrap_or_else(|| panic!("{diags}")).scripts.len(), 2);
    // include_check makes plain includes check: all of it, or what it names.
    let (cfg, diags) = load("include_check\ninclude conf.d/none*.conf\n");
    assert!(cfg.is_none(), "{diags}");
    let (cfg, diags) = load("include_check readable\ninclude conf.d/none*.conf\n");
    assert!(
        cfg.is_some(),
        "readable alone: nothing to read is fine: {diags}"
    );
    let (cfg, diags) = load("include_check +match\ninclude conf.d/none*.conf\n");
    assert!(cfg.is_none(), "{diags}");
    let (cfg, diags) = load("include_check -match +brace_match\ninclude conf.d/{a,none}.conf\n");
    assert!(
        cfg.is_none() && diags.to_string().contains("alternative"),
        "{diags}"
    );
    let (_, diags) = load("include_check sometimes\n");
    assert!(
        diags
            .to_string()
            .contains("unknown include_check option `sometimes`"),
        "{diags}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// keepalived's vrrp_track_process and its defaults.
#[test]
fn track_process_reads_as_keepalived_writes_it() {
    let text = "vrrp_track_process nginx {\n process nginx\n weight -10 reverse\n quorum 2\n quorum_max 4\n delay 2\n fork_delay 1\n}\n\
                vrrp_track_process api {\n process /usr/bin/python3 -m api\n param_match initial\n}\n\
                vrrp_track_process none {\n quorum 1\n}\n\
                vrrp_instance A {\n interface eth0\n virtual_router_id 1\n track_process {\n nginx\n api weight 5\n nope\n }\n virtual_ipaddress {\n 192.0.2.1/24\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let n = &cfg.track_processes["nginx"];
    assert_eq!(
        (
            n.weight,
            n.reverse,
            n.quorum,
            n.quorum_max,
            n.full_command,
            n.param_match
        ),
        (-10, true, 2, 4, false, None)
    );
    assert_eq!(
        (n.fork_delay.as_secs(), n.terminate_delay.as_secs()),
        (1, 2),
        "delay sets both, fork_delay after it overrides"
    );
    let a = &cfg.track_processes["api"];
    assert_eq!(a.process, "/usr/bin/python3");
    assert_eq!(a.params, ["-m", "api"]);
    assert_eq!(
        (a.full_command, a.param_match, a.quorum, a.quorum_max),
        (true, Some(model::ParamMatch::Initial), 1, u32::MAX)
    );
    assert!(
        !cfg.track_processes.contains_key("none"),
        "no process: removed"
    );
    let said = diags.to_string();
    assert!(
        said.contains("vrrp_track_process none has no `process`"),
        "{said}"
    );
    assert!(said.contains("track_process names `nope`"), "{said}");
    assert_eq!(cfg.instances[0].track_processes.len(), 3);
}

/// The small differences the keyword audit found, each as keepalived reads it.
#[test]
fn small_keywords_read_as_keepalived_reads_them() {
    let text = "global_defs {\n vrrp_down_timer_adverts 5\n notify_fifo /run/a.fifo\n vrrp_notify_fifo /run/b.fifo\n}\n\
                vrrp_instance A {\n interface eth0\n virtual_router_id 7\n version 3\n v3_checksum_as_v2\n notify_deleted\n\
                use_vmac name vm7 02:11:22:33:44\n no_virtual_ipaddress\n}\n\
                vrrp_instance B {\n interface eth0\n virtual_router_id 8\n down_timer_adverts 2\n notify_deleted /bin/true\n\
                use_vmac 02:00:00:00:00:01 netlink_notify_msg group 7\n virtual_ipaddress {\n 192.0.2.9/24 brd +\n 192.0.2.10/26 brd -\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let (a, b) = (&cfg.instances[0], &cfg.instances[1]);
    assert_eq!(
        cfg.global.notify_fifo.as_ref().unwrap().path,
        Path::new("/run/a.fifo")
    );
    assert_eq!(
        cfg.global.vrrp_notify_fifo.as_ref().unwrap().path,
        Path::new("/run/b.fifo"),
        "two fifos, not one slot"
    );
    assert_eq!((a.down_timer_adverts, b.down_timer_adverts), (5, 2));
    assert!(a.v3_checksum_as_v2 && !b.v3_checksum_as_v2);
    assert!(
        a.notify.notify_deleted && a.notify.deleted.is_none(),
        "bare notify_deleted"
    );
    assert!(b.notify.notify_deleted && b.notify.deleted.is_some());
    assert_eq!(a.use_vmac.as_deref(), Some("vm7"), "`name NAME`");
    assert_eq!(
        a.vmac_address(),
        [2, 0x11, 0x22, 0x33, 0x44, 7],
        "five octets + VRID"
    );
    assert_eq!(b.use_vmac.as_deref(), Some(""));
    assert_eq!(b.vmac_address(), [2, 0, 0, 0, 0, 1]);
    assert!(b.vmac_netlink_notify && !a.vmac_netlink_notify);
    assert_eq!((a.vmac_group, b.vmac_group), (None, Some(7)));
    assert!(
        a.vips.is_empty() && !diags.to_string().contains("has no virtual_ipaddress"),
        "{diags}"
    );
    assert_eq!(
        (b.vips[0].brd, b.vips[1].brd),
        (
            Some("192.0.2.255".parse().unwrap()),
            Some("192.0.2.0".parse().unwrap())
        )
    );
    let (cfg, diags) = parse_str(
        &text.replace("02:11:22:33:44", "00:00:5e:00:01"),
        Path::new("mem.conf"),
        &LoadOptions::default(),
    );
    assert!(
        cfg.is_none() && diags.to_string().contains("virtual router MAC range"),
        "{diags}"
    );
}

/// keepalived ignores the members' tracking weights in a sync group unless
/// sync_group_tracking_weight, and an address owner's always.
#[test]
fn sync_group_members_lose_their_weights_as_keepalived_s() {
    let inst = |name: &str, vrid: u8, prio: u8| {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n priority {prio}\n\
             track_interface {{\n eth1 weight -10\n eth2\n }}\n track_script {{\n heavy\n light weight 0\n }}\n\
             track_file {{\n f1\n f2 weight 5\n }}\n virtual_ipaddress {{\n 192.0.2.{vrid}/24\n }}\n}}\n"
        )
    };
    let common = "vrrp_script heavy {\n script /bin/true\n weight 20\n}\nvrrp_script light {\n script /bin/true\n}\n\
                  vrrp_track_file f1 {\n file /tmp/f1\n}\nvrrp_track_file f2 {\n file /tmp/f2\n}\n";
    let load = |group: &str| {
        let text = format!(
            "{common}{}{}{}vrrp_sync_group G {{\n group {{\n A\n }}\n{group}\n}}\n",
            inst("A", 1, 100),
            inst("B", 2, 100),
            inst("O", 3, 255)
        );
        let (cfg, diags) = parse_str(&text, Path::new("mem.conf"), &LoadOptions::default());
        cfg.unwrap_or_else(|| panic!("{diags}"))
    };
    let shape = |i: &model::Instance| {
        (
            i.track_interfaces
                .iter()
                .map(|t| (t.name.clone(), t.weight))
                .collect::<Vec<_>>(),
            i.track_scripts
                .iter()
                .map(|t| t.name.clone())
                .collect::<Vec<_>>(),
            i.track_files
                .iter()
                .map(|t| (t.name.clone(), t.weight))
                .collect::<Vec<_>>(),
        )
    };
    let cfg = load("");
    let (a, b, o) = (&cfg.instances[0], &cfg.instances[1], &cfg.instances[2]);
    assert_eq!(
        shape(a),
        (
            vec![("eth1".into(), Some(0)), ("eth2".into(), None)],
            vec!["light".into()],
            vec![("f1".into(), Some(0))]
        ),
        "in the group: weights go"
    );
    assert_eq!(shape(b).0[0].1, Some(-10), "outside any group: kept");
    assert_eq!(shape(b).1.len(), 2);
    assert_eq!(
        shape(o).0,
        vec![("eth2".into(), None)],
        "the owner stops tracking weighted interfaces"
    );
    let cfg = load(" sync_group_tracking_weight");
    assert_eq!(
        shape(&cfg.instances[0]),
        shape(&cfg.instances[1]),
        "with it: kept"
    );
}

/// vrrp_min_garp leaves explicit settings alone; garp_extra_if reads
/// keepalived's `[all] SECS`.
#[test]
fn min_garp_and_garp_extra_if_read_as_keepalived_reads_them() {
    let inst = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n garp_extra_if all 100\n virtual_ipaddress {\n 192.0.2.1/24\n }\n}\n\
                vrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n 192.0.2.2/24\n }\n}\n";
    let load = |g: &str| {
        let (cfg, diags) = parse_str(
            &format!("global_defs {{\n{g}\n}}\n{inst}"),
            Path::new("mem.conf"),
            &LoadOptions::default(),
        );
        cfg.unwrap_or_else(|| panic!("{diags}"))
    };
    let cfg = load(" vrrp_min_garp\n vrrp_garp_extra_if 60");
    assert_eq!(
        (
            cfg.global.garp_master_repeat,
            cfg.global.garp_master_delay.as_secs()
        ),
        (1, 0)
    );
    assert_eq!(
        cfg.instances[0].garp_extra_if,
        Some((std::time::Duration::from_secs(100), true))
    );
    assert_eq!(
        cfg.global.garp_extra_if,
        Some((std::time::Duration::from_secs(60), false))
    );
    let cfg = load(" vrrp_garp_master_repeat 3\n vrrp_min_garp");
    assert_eq!(cfg.global.garp_master_repeat, 3, "set before it: kept");
    let cfg = load(" vrrp_min_garp off");
    assert_eq!(cfg.global.garp_master_repeat, 5);
}

/// keepalived's defaults and inheritance for the LVS half: virtual server →
/// real server → checker, whatever the order of the lines; per-checker
/// defaults (MISC_CHECK retries 0 times, HTTP_GET waits 3 s between retries).
#[test]
fn virtual_server_defaults_and_inheritance_follow_keepalived() {
    use crate::config::lvs::{CheckKind, LbKind, LbProtocol, VsTarget};
    let text = "virtual_server 192.0.2.10 80 {\n real_server 198.51.100.1 {\n TCP_CHECK {\n }\n MISC_CHECK {\n misc_path \"/bin/true x\"\n }\n }\n\
                real_server 198.51.100.2 8080 {\n weight 3\n retry 4\n HTTP_GET {\n url {\n path /\n }\n connect_port 81\n }\n }\n\
                delay_loop 7\n connect_timeout 2\n alpha\n inhibit_on_failure\n persistence_timeout\n quorum 9\n hysteresis 3\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let vs = &cfg.virtual_servers[0];
    assert_eq!(vs.target, VsTarget::Addr("192.0.2.10:80".parse().unwrap()));
    assert_eq!(
        (vs.protocol, vs.lb_kind, vs.lb_algo.as_str()),
        (LbProtocol::Tcp, LbKind::Nat, "wlc")
    );
    assert_eq!(vs.persistence_timeout, Some(Duration::from_secs(360)));
    // quorum above the total weight (4) is clamped, hysteresis below it.
    assert_eq!((vs.quorum, vs.hysteresis), (4, 3));
    assert!(diags.to_string().contains("quorum 9 is above"), "{diags}");
    let (a, b) = (&vs.reals[0], &vs.reals[1]);
    assert_eq!(
        a.addr,
        "198.51.100.1:80".parse().unwrap(),
        "the port defaults to the virtual server's"
    );
    assert!(a.inhibit_on_failure && a.alpha);
    let tcp = &a.checkers[0];
    assert_eq!(tcp.kind, CheckKind::Tcp);
    assert_eq!(tcp.connect, a.addr);
    assert_eq!(
        (
            tcp.delay_loop,
            tcp.connect_timeout,
            tcp.retry,
            tcp.delay_before_retry,
            tcp.warmup,
            tcp.alpha
        ),
        (
            Duration::from_secs(7),
            Duration::from_secs(2),
            1,
            Duration::from_secs(1),
            Duration::from_secs(7),
            true
        )
    );
    assert_eq!(
        a.checkers[1].retry, 0,
        "MISC_CHECK retries 0 times by default"
    );
    let http = &b.checkers[0];
    assert_eq!(
        (b.weight, http.retry),
        (3, 4),
        "retry inherited from the real server"
    );
    assert_eq!(http.delay_before_retry, Duration::from_secs(3));
    assert_eq!(http.connect, "198.51.100.2:81".parse().unwrap());
    let CheckKind::Http { urls, tls, .. } = &http.kind else {
        panic!()
    };
    assert_eq!((urls[0].status.clone(), *tls), (vec![(200, 299)], false));
}

/// virtual_server_group ranges expand as keepalived's do.
#[test]
fn virtual_server_group_ranges_expand() {
    let text = "virtual_server_group G {\n 192.0.2.1-3 80\n 2001:db8::a-b 443\n fwmark 5\n}\nvirtual_server group G {\n real_server 198.51.100.1 80 {\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let g = &cfg.vs_groups[0];
    let addrs: Vec<String> = g.addrs.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        addrs,
        [
            "192.0.2.1:80",
            "192.0.2.2:80",
            "192.0.2.3:80",
            "[2001:db8::a]:443",
            "[2001:db8::b]:443"
        ]
    );
    assert_eq!(g.fwmarks, [5]);
}

/// virtual_server scripts (MISC_CHECK, notify_up/down, quorum_up/down) fall
/// under the same script security as VRRP's: with enable_script_security an
/// unsafe one is disabled (a MISC_CHECK leaves its real), without it a
/// warning names the repair.
#[test]
fn virtual_server_scripts_follow_script_security() {
    let s = Scratch::new("lvs-scripts");
    let script = s.file("check.sh", "#!/bin/sh\nexit 0\n", 0o757);
    let conf = |security: bool| {
        format!(
            "{}virtual_server 192.0.2.1 80 {{\n quorum_down \"{p}\"\n real_server 198.51.100.1 80 {{\n notify_down \"{p} x\"\n MISC_CHECK {{\n misc_path \"{p} y\"\n }}\n TCP_CHECK {{\n }}\n }}\n}}\n",
            if security { "global_defs {\n enable_script_security\n}\n" } else { "" },
            p = script.display()
        )
    };
    let main = s.file("a.conf", &conf(false), 0o644);
    let (cfg, d) = load(&main, &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{d}"));
    assert_eq!(cfg.virtual_servers[0].reals[0].checkers.len(), 2);
    assert!(d.to_string().contains("SECURITY VIOLATION"), "{d}");
    let main = s.file("b.conf", &conf(true), 0o644);
    let (cfg, d) = load(&main, &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{d}"));
    let vs = &cfg.virtual_servers[0];
    assert!(
        vs.quorum_down.is_none() && vs.reals[0].notify_down.is_none(),
        "{d}"
    );
    assert_eq!(
        vs.reals[0].checkers.len(),
        1,
        "the MISC_CHECK is disabled: {d}"
    );
    assert_eq!(
        vs.reals[0].checkers[0].kind,
        crate::config::lvs::CheckKind::Tcp
    );
}

/// keepalived's address-line options: `use_vmac` (with `dev`), options it
/// reads but xvrrp does not apply, and unknown ones, which keepalived logs
/// and ignores (errors only under --strict).
#[test]
fn address_options_load_as_keepalived_loads_them() {
    let text = "global_defs {\n vmac_prefix vm\n vmac_addr_prefix va\n}\n\
                vrrp_instance A {\n interface eth0\n virtual_router_id 9\n use_vmac_addr\n\
                virtual_ipaddress {\n 192.0.2.1/24\n 198.51.100.1/24 dev eth1 use_vmac\n\
                192.0.2.2/32 use_vmac\n 192.0.2.3/32 preferred_lft 0\n 192.0.2.4/32 frobnicate\n }\n}\n";
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &LoadOptions::default());
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    let i = &cfg.instances[0];
    assert!(i.use_vmac_addr);
    assert_eq!(
        (
            cfg.global.vmac_prefix.as_deref(),
            cfg.global.vmac_addr_prefix.as_deref()
        ),
        (Some("vm"), Some("va"))
    );
    assert!(i.vips[1].use_vmac, "use_vmac with dev");
    assert!(!i.vips[2].use_vmac, "use_vmac without dev is ignored");
    let said = diags.to_string();
    assert!(said.contains("use_vmac on 192.0.2.2 needs `dev`"), "{said}");
    assert!(said.contains("`preferred_lft` is not applied"), "{said}");
    assert!(
        said.contains("unknown address option `frobnicate`: ignored"),
        "{said}"
    );
    assert_eq!(i.vips.len(), 5, "every address kept");
    let strict = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    let (cfg, diags) = parse_str(text, Path::new("mem.conf"), &strict);
    assert!(
        cfg.is_none() && diags.to_string().contains("frobnicate"),
        "{diags}"
    );
}

/// `lb_kind TUN type ipip|gue|gre [port N] [nocsum|csum|remcsum]` with
/// keepalived's rules (check_parser.c svr_forwarding_handler): gue needs a
/// port and only gue takes one, ipip has no checksum option, gre no remote
/// one; xvrrp sends without checksums, so csum is a warning saying so.
#[test]
fn lb_kind_tun_types_follow_keepalived() {
    use crate::config::lvs::TunType;
    let load = |kind: &str| {
        let text = format!(
            "virtual_server 192.0.2.10 80 {{\n lb_kind {kind}\n real_server 198.51.100.1 80 {{\n }}\n}}\n"
        );
        let (cfg, diags) = parse_str(&text, Path::new("mem.conf"), &LoadOptions::default());
        (
            cfg.and_then(|c| c.virtual_servers.first().map(|v| (v.tun_type, v.tun_port))),
            diags.to_string(),
        )
    };
    assert_eq!(load("TUN").0, Some((TunType::Ipip, 0)));
    assert_eq!(load("TUN type ipip nocsum").0, Some((TunType::Ipip, 0)));
    assert_eq!(load("TUN type gre").0, Some((TunType::Gre, 0)));
    assert_eq!(load("TUN type gue port 6080").0, Some((TunType::Gue, 6080)));
    for (kind, says) in [
        ("TUN type gue", "gue tunnels require a port"),
        ("TUN type gre port 6080", "gue tunnels require a port"),
        ("TUN type gue port 0", "invalid gue tunnel port"),
        ("TUN type vxlan", "unknown tunnel type"),
        ("TUN type ipip csum", "ipip tunnels have no checksum option"),
        ("TUN type gre remcsum", "no remote checksum option"),
        ("TUN type gre bogus", "invalid tunnel option"),
    ] {
        let (cfg, diags) = load(kind);
        assert!(cfg.is_none(), "{kind}: loaded");
        assert!(diags.contains(says), "{kind}: {diags}");
    }
    let (cfg, diags) = load("TUN type gue port 6080 csum");
    assert_eq!(cfg, Some((TunType::Gue, 6080)), "{diags}");
    assert!(diags.contains("without a checksum"), "{diags}");
}

/// vrrp_priority, vrrp_rt_priority, vrrp_rlimit_rttime and vrrp_no_swap
/// are read with keepalived's ranges (nice -20..19, SCHED_RR 1..99).
#[test]
fn scheduling_keywords_follow_keepalived() {
    use crate::config::model::Scheduling;
    let (cfg, diags) = parse_str(
        "global_defs {\n vrrp_priority -20\n vrrp_rt_priority 99\n vrrp_rlimit_rttime 20000\n vrrp_no_swap\n}\n",
        Path::new("mem.conf"),
        &LoadOptions::default(),
    );
    let cfg = cfg.unwrap_or_else(|| panic!("{diags}"));
    assert_eq!(
        cfg.global.scheduling,
        Scheduling {
            nice: Some(-20),
            rt_priority: Some(99),
            rlimit_rttime: Some(20000),
            no_swap: true,
        }
    );
    for bad in [
        " vrrp_priority 20",
        " vrrp_rt_priority 0",
        " vrrp_rt_priority 100",
    ] {
        let text = format!("global_defs {{\n{bad}\n}}\n");
        let (_, diags) = parse_str(&text, Path::new("mem.conf"), &LoadOptions::default());
        assert!(diags.to_string().contains("out of range"), "{bad}: {diags}");
    }
}
