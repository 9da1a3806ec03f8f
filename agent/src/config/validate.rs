//! Checks across the whole config: what keepalived refuses, what it
//! silently does differently, and script safety.

use std::{
    collections::{BTreeMap, HashMap},
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use super::{
    diag::{Diagnostic, Diagnostics, Pos},
    keywords::did_you_mean,
    model::*,
};

pub fn validate(cfg: &Config, diags: &mut Diagnostics) {
    let mut seen: HashMap<(String, bool, u8), &Instance> = HashMap::new();
    for i in &cfg.instances {
        instance(cfg, i, diags);
        if i.vrid != 0 && !i.interface.is_empty() {
            if let Some(first) = seen.insert((i.interface.clone(), i.is_ipv6(), i.vrid), i) {
                diags.push(
                    Diagnostic::error(&i.pos, &i.name, format!(
                        "vrrp_instance {} uses virtual_router_id {} on {} ({}), like vrrp_instance {} at {}",
                        i.name, i.vrid, i.interface, if i.is_ipv6() { "IPv6" } else { "IPv4" }, first.name, first.pos
                    ))
                    .fix("give each instance on one interface and family its own virtual_router_id"),
                );
            }
        }
    }
    for g in &cfg.groups {
        for m in &g.members {
            if !cfg.instances.iter().any(|i| &i.name == m) {
                let names: Vec<&str> = cfg.instances.iter().map(|i| i.name.as_str()).collect();
                let fix = match did_you_mean(m, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "list vrrp_instance names defined in this config".into(),
                };
                diags.push(
                    Diagnostic::error(
                        &g.pos,
                        m,
                        format!(
                            "vrrp_sync_group {} names `{m}`, which is not a vrrp_instance",
                            g.name
                        ),
                    )
                    .fix(fix),
                );
            }
        }
        if g.members.is_empty() {
            diags.push(
                Diagnostic::warning(
                    &g.pos,
                    &g.name,
                    format!("vrrp_sync_group {} has no members", g.name),
                )
                .fix("add `group { VI_1 VI_2 }`"),
            );
        }
        tracks(cfg, &g.track_scripts, &g.track_files, diags);
        processes(cfg, &g.track_processes, diags);
        notify_scripts(cfg, &g.notify, diags);
    }
    for cmd in [&cfg.global.startup_script, &cfg.global.shutdown_script]
        .into_iter()
        .flatten()
        .chain(cfg.virtual_servers.iter().flat_map(|vs| vs.commands()))
    {
        script_security(cmd, diags);
    }
    // Scripts run only when something tracks them (keepalived).
    for s in cfg.scripts.values() {
        let used = cfg
            .instances
            .iter()
            .any(|i| i.track_scripts.iter().any(|t| t.name == s.name))
            || cfg
                .groups
                .iter()
                .any(|g| g.track_scripts.iter().any(|t| t.name == s.name));
        if let (true, Some(cmd)) = (used, &s.script) {
            script_security(cmd, diags);
        }
    }
    if cfg.global.strict {
        diags.push(Diagnostic {
            severity: super::diag::Severity::Warning,
            pos: None,
            file: cfg.files.first().cloned(),
            token: Some("vrrp_strict".into()),
            message: "vrrp_strict: non-owner routers will not accept traffic to the VIPs (no ping, no connections to them), \
                      as keepalived's firewall rules do; xvrrp drops it in XDP (no iptables rules)".into(),
            fix: Some("remove vrrp_strict if hosts must reach the VIPs themselves (the seed's Q2)".into()),
            lenient: false,
        });
    }
}

fn instance(cfg: &Config, i: &Instance, diags: &mut Diagnostics) {
    let at = &i.pos;
    let strict = i.strict.unwrap_or(cfg.global.strict);
    let err = |diags: &mut Diagnostics, msg: String, fix: &str| {
        diags.push(Diagnostic::error(at, &i.name, msg).fix(fix))
    };
    let v6 = i.is_ipv6();
    for v in &i.vips {
        if v.addr.is_ipv6() != v6 {
            let pos = v.pos.clone().unwrap_or_else(|| at.clone());
            diags.push(
                Diagnostic::error(&pos, &v.addr.to_string(), format!("vrrp_instance {} mixes IPv4 and IPv6 in virtual_ipaddress", i.name))
                    .fix("use one family per instance; move the other family to a second instance or to virtual_ipaddress_excluded"),
            );
        }
    }
    // RFC 9568 §5.2.9: in IPv6 adverts the first address is the link-local
    // one (keepalived warns, and refuses under vrrp_strict).
    if let Some(std::net::IpAddr::V6(first)) = i.vips.first().map(|v| v.addr) {
        if (first.segments()[0] & 0xffc0) != 0xfe80 {
            let pos = i.vips[0].pos.clone().unwrap_or_else(|| at.clone());
            let d = Diagnostic::warning(
                &pos,
                &first.to_string(),
                format!(
                    "vrrp_instance {}: the first IPv6 virtual address should be a link-local one (RFC 9568 §5.2.9); {first} is not",
                    i.name
                ),
            )
            .fix("list a link-local VIP (fe80::/64) first, e.g. `fe80::1/64`");
            diags.push(if strict {
                Diagnostic {
                    severity: super::diag::Severity::Error,
                    ..d
                }
            } else {
                d
            });
        }
    }
    // RFC 9568 §5.2.5: an advert carries at least one address. keepalived
    // refuses a v3 (or strict) instance without VIPs ("at least one is
    // required") and only warns for v2, which sends count 0.
    // `no_virtual_ipaddress` says it is meant (keepalived then sends none).
    if i.vips.is_empty() && !i.no_virtual_ipaddress {
        let required = strict || i.version == 3;
        let d = Diagnostic::warning(
            at,
            &i.name,
            format!(
                "vrrp_instance {} has no virtual_ipaddress ({})",
                i.name,
                if required {
                    "VRRPv3 and vrrp_strict need at least one: keepalived refuses it too"
                } else {
                    "a VRRPv2 advert without addresses; keepalived accepts it"
                }
            ),
        )
        .fix("add `virtual_ipaddress { 192.0.2.10/24 }`");
        diags.push(if required {
            Diagnostic {
                severity: super::diag::Severity::Error,
                ..d
            }
        } else {
            d
        });
    }
    if let Some(g) = i.mcast_dst_ip {
        if g.is_ipv6() != v6 {
            err(
                diags,
                format!(
                    "mcast_dst_ip {g} of vrrp_instance {} is not of the VIPs' family",
                    i.name
                ),
                "use a group of the same family as the virtual_ipaddress",
            );
        }
    }
    for p in &i.unicast_peers {
        if p.is_ipv6() != v6 {
            err(
                diags,
                format!(
                    "unicast_peer {p} of vrrp_instance {} is not of the VIPs' family",
                    i.name
                ),
                "list peers of the same family as the virtual_ipaddress",
            );
        }
    }
    if let Some(src) = i.unicast_src_ip {
        if src.is_ipv6() != v6 {
            err(
                diags,
                format!(
                    "unicast_src_ip {src} of vrrp_instance {} is not of the VIPs' family",
                    i.name
                ),
                "use a source address of the same family",
            );
        }
    }
    if strict && !i.unicast_peers.is_empty() {
        err(
            diags,
            format!(
                "vrrp_strict forbids unicast_peer (vrrp_instance {})",
                i.name
            ),
            "remove unicast_peer or vrrp_strict",
        );
    }
    if !strict && i.priority == 255 && i.state == InitialState::Backup {
        diags.push(Diagnostic::warning(at, &i.name, format!("vrrp_instance {} has priority 255 (address owner) but state BACKUP: it will go Active at once", i.name)).fix("use priority 254 or lower on a non-owner"));
    }
    if !i.preempt && i.state == InitialState::Master {
        diags.push(Diagnostic::warning(at, &i.name, format!("vrrp_instance {}: nopreempt only works with state BACKUP (keepalived clears it); xvrrp honours nopreempt", i.name)).fix("set `state BACKUP` on every router when using nopreempt"));
    }
    if i.unicast_peers.is_empty() && i.unicast_src_ip.is_some() && !strict {
        // keepalived silently multicasts; say so.
        diags.push(Diagnostic::warning(at, &i.name, format!("vrrp_instance {} has unicast_src_ip but no unicast_peer: adverts go to the multicast group", i.name)).fix("add `unicast_peer { ADDRESS }` or remove unicast_src_ip"));
    }
    tracks(cfg, &i.track_scripts, &i.track_files, diags);
    processes(cfg, &i.track_processes, diags);
    notify_scripts(cfg, &i.notify, diags);
}

fn tracks(cfg: &Config, scripts: &[Track], files: &[Track], diags: &mut Diagnostics) {
    undefined(
        scripts,
        &cfg.scripts,
        "track_script",
        "vrrp_script",
        "script \"...\"",
        diags,
    );
    undefined(
        files,
        &cfg.track_files,
        "track_file",
        "vrrp_track_file",
        "file /path",
        diags,
    );
}

fn processes(cfg: &Config, tracked: &[Track], diags: &mut Diagnostics) {
    undefined(
        tracked,
        &cfg.track_processes,
        "track_process",
        "vrrp_track_process",
        "process NAME",
        diags,
    );
}

/// Trackers naming a `block` nobody defined: keepalived logs "... not
/// found, ignoring..." and runs without them; so does xvrrp, with the fix.
fn undefined<V>(
    tracked: &[Track],
    defined: &BTreeMap<String, V>,
    keyword: &str,
    block: &str,
    body: &str,
    diags: &mut Diagnostics,
) {
    let names: Vec<&str> = defined.keys().map(String::as_str).collect();
    for t in tracked.iter().filter(|t| !defined.contains_key(&t.name)) {
        let pos = t.pos.clone().expect("parsed tracks have positions");
        let fix = match did_you_mean(&t.name, &names) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("define `{block} {} {{ {body} }}`", t.name),
        };
        diags.push(
            Diagnostic::warning(
                &pos,
                &t.name,
                format!(
                    "{keyword} names `{}`, which is not a defined {block}: not tracked, as keepalived ignores it",
                    t.name
                ),
            )
            .fix(fix)
            .lenient(),
        );
    }
}

fn notify_scripts(_cfg: &Config, n: &Notify, diags: &mut Diagnostics) {
    for cmd in n.scripts() {
        script_security(cmd, diags);
    }
}

/// The program a command runs, resolved like execvp.
pub fn resolve_program(cmd: &Command) -> Option<PathBuf> {
    let prog = cmd.argv.first()?;
    if prog.contains('/') {
        return Some(PathBuf::from(prog));
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    path.split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
}

/// enable_script_security's rule, always on and with the repair: a script
/// run as root must not be writable by anyone but root, nor may any
/// directory on its path.
fn script_security(cmd: &Command, diags: &mut Diagnostics) {
    let pos = cmd.pos.clone().unwrap_or_else(|| Pos {
        file: Default::default(),
        line: 0,
        col: 0,
    });
    // Shell syntax like `</dev/tcp/127.0.0.1/80` runs through /bin/sh.
    if cmd.argv[0].contains(['<', '>', '|', '&', ';', '$']) {
        return;
    }
    let Some(prog) = resolve_program(cmd) else {
        diags.push(
            Diagnostic::warning(
                &pos,
                &cmd.argv[0],
                format!(
                    "script `{}` was not found in PATH: the check counts as failed until it exists",
                    cmd.argv[0]
                ),
            )
            .fix("use an absolute path to an existing executable"),
        );
        return;
    };
    let meta = match std::fs::metadata(&prog) {
        Ok(m) => m,
        Err(_) => {
            diags.push(
                Diagnostic::warning(&pos, &prog.display().to_string(), format!("script {} does not exist (yet): the check counts as failed, the notify is skipped", prog.display()))
                    .fix(format!("install it, owned by root: `install -m 755 -o root SCRIPT {}`", prog.display())),
            );
            return;
        }
    };
    if meta.permissions().mode() & 0o111 == 0 && !cmd.argv[0].ends_with(".sh") {
        diags.push(
            Diagnostic::warning(
                &pos,
                &prog.display().to_string(),
                format!("script {} is not executable", prog.display()),
            )
            .fix(format!("chmod 755 {}", prog.display())),
        );
    }
    // keepalived without enable_script_security runs an unsafe script
    // and logs a SECURITY VIOLATION; with it, the script is disabled
    // (fixups.rs takes it out before this runs).
    for (path, why, fix) in unsafe_paths(&prog) {
        diags.push(
            Diagnostic::warning(&pos, &prog.display().to_string(), format!("{why}: it runs as root all the same, as keepalived runs it (\"SECURITY VIOLATION - scripts are being executed but script_security not enabled\"); with enable_script_security it would be disabled ({})", path.display()))
                .fix(fix)
                .lenient(),
        );
    }
}

/// Why running `prog` as root is unsafe: it, or a directory above it, can
/// be changed by someone other than root (keepalived's check_script_secure).
pub fn unsafe_paths(prog: &Path) -> Vec<(PathBuf, String, String)> {
    let mut out = Vec::new();
    let mut path = prog;
    let mut first = true;
    loop {
        if let Ok(m) = std::fs::metadata(path) {
            let mode = m.permissions().mode();
            let sticky_dir = m.is_dir() && mode & 0o1000 != 0;
            let what = if first {
                "script"
            } else {
                "directory of script"
            };
            if mode & 0o002 != 0 && !sticky_dir || mode & 0o020 != 0 && m.gid() != 0 {
                out.push((
                    path.to_path_buf(),
                    format!(
                        "{what} {} is writable by non-root users (mode {:o})",
                        path.display(),
                        mode & 0o7777
                    ),
                    format!("chmod go-w {}", path.display()),
                ));
            } else if m.uid() != 0 && mode & 0o200 != 0 {
                out.push((
                    path.to_path_buf(),
                    format!(
                        "{what} {} belongs to uid {} who can change what root runs",
                        path.display(),
                        m.uid()
                    ),
                    format!("chown root:root {}", path.display()),
                ));
            }
        }
        first = false;
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => path = p,
            _ => break,
        }
    }
    out
}
