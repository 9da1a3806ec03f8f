//! keepalived.conf, typed, with keepalived's defaults.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    time::Duration,
};

use serde::Serialize;

use super::diag::Pos;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub global: Global,
    pub scripts: BTreeMap<String, VrrpScript>,
    pub track_files: BTreeMap<String, TrackFileDef>,
    /// vrrp_track_process blocks, by name.
    pub track_processes: BTreeMap<String, TrackProcessDef>,
    pub instances: Vec<Instance>,
    pub groups: Vec<SyncGroup>,
    /// `static_ipaddress` / `static_routes` / `static_rules`: set while the
    /// agent runs, whatever the instances' states.
    pub statics: Statics,
    /// `interface_up_down_delays`: (down, up) delays per interface before
    /// trackers see a link change.
    pub link_delays: BTreeMap<String, (Duration, Duration)>,
    /// keepalived's LVS half: `virtual_server` blocks (config/lvs.rs).
    pub virtual_servers: Vec<super::lvs::VirtualServer>,
    pub vs_groups: Vec<super::lvs::VsGroup>,
    /// Every file read (the main one, then includes).
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Global {
    pub router_id: Option<String>,
    /// vrrp_version: 2 unless set (IPv6 instances are always 3).
    pub vrrp_version: u8,
    pub mcast_group4: Ipv4Addr,
    pub mcast_group6: Ipv6Addr,
    pub garp_interval: Duration,
    pub gna_interval: Duration,
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    /// vrrp_garp_lower_prio_delay / _repeat (None: garp_master's).
    pub garp_lower_prio_delay: Option<Duration>,
    pub garp_lower_prio_repeat: Option<u32>,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    pub garp_master_refresh: Option<Duration>,
    pub garp_master_refresh_repeat: u32,
    /// `vrrp_garp_extra_if [all] SECS`: the instances' default.
    pub garp_extra_if: Option<(Duration, bool)>,
    pub skip_check_adv_addr: bool,
    pub strict: bool,
    pub enable_script_security: bool,
    pub script_user: Option<ScriptUser>,
    pub check_unicast_src: bool,
    pub startup_delay: Duration,
    /// v3_checksum_as_v2: v3/IPv4 checksum without the pseudo-header.
    pub v3_checksum_as_v2: bool,
    /// `notify_fifo`: every state line (keepalived also writes its checker
    /// lines there).
    pub notify_fifo: Option<Fifo>,
    /// `vrrp_notify_fifo`: VRRP state lines; both fifos get them.
    pub vrrp_notify_fifo: Option<Fifo>,
    /// `lvs_notify_fifo`: virtual_server lines (`VS …`, `RS …`); notify_fifo
    /// gets them too.
    pub lvs_notify_fifo: Option<Fifo>,
    /// The top-level `SSL` block: SSL_GET's client certificate.
    pub ssl: Option<crate::config::lvs::SslOptions>,
    /// `vrrp_down_timer_adverts`: the instances' default.
    pub down_timer_adverts: u32,
    /// `default_interface`: where a static address without `dev` goes
    /// (keepalived's default is eth0).
    pub default_interface: Option<String>,
    pub smtp: Smtp,
    /// `startup_script SCRIPT [user [group]]` and its timeout (10 s).
    pub startup_script: Option<Command>,
    pub startup_script_timeout: Duration,
    /// `shutdown_script SCRIPT [user [group]]` and its timeout (10 s).
    pub shutdown_script: Option<Command>,
    pub shutdown_script_timeout: Duration,
    /// `net_namespace NAME` (top level): run in /run/netns/NAME.
    pub net_namespace: Option<String>,
    /// `vmac_prefix`: use_vmac's default name is PREFIX.VRID (`vrrp`).
    pub vmac_prefix: Option<String>,
    /// `vmac_addr_prefix`: the name prefix of use_vmac_addr's vmacs
    /// (else vmac_prefix, else `vrrp`).
    pub vmac_addr_prefix: Option<String>,
    /// vrrp_priority / vrrp_rt_priority / vrrp_rlimit_rttime / vrrp_no_swap.
    pub scheduling: Scheduling,
}

/// How the agent is scheduled (keepalived's VRRP process settings; xvrrp
/// is one process, so they apply to all of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scheduling {
    /// `vrrp_priority`: the nice value, -20..19.
    pub nice: Option<i32>,
    /// `vrrp_rt_priority`: SCHED_RR at this priority, 1..99.
    pub rt_priority: Option<u32>,
    /// `vrrp_rlimit_rttime`: CPU µs a real-time thread may use without
    /// sleeping (RLIMIT_RTTIME) before the kernel stops it; keepalived's
    /// default 10,000 with a real-time priority.
    pub rlimit_rttime: Option<u64>,
    /// `vrrp_no_swap`: every page locked in memory (mlockall).
    pub no_swap: bool,
}

/// keepalived's mail alerts: global_defs' notification_email,
/// notification_email_from, smtp_server, smtp_helo_name,
/// smtp_connect_timeout, smtp_alert, smtp_alert_vrrp, no_email_faults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Smtp {
    /// `smtp_server HOST [PORT]` (port 25 unless written).
    pub server: Option<(String, u16)>,
    pub to: Vec<String>,
    /// None: `USER@HOST`, as keepalived.
    pub from: Option<String>,
    /// None: the host name.
    pub helo_name: Option<String>,
    pub connect_timeout: Duration,
    /// Global `smtp_alert` / `smtp_alert_vrrp`: the default of instances
    /// and groups that do not say (keepalived: alert_vrrp, else alert, else off).
    pub alert: Option<bool>,
    pub alert_vrrp: Option<bool>,
    pub no_email_faults: bool,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            server: None,
            to: Vec::new(),
            from: None,
            helo_name: None,
            connect_timeout: Duration::from_secs(30),
            alert: None,
            alert_vrrp: None,
            no_email_faults: false,
        }
    }
}

impl Smtp {
    /// Whether an instance or group with this `smtp_alert` sends mail:
    /// its own setting, else smtp_alert_vrrp, else smtp_alert, else no;
    /// and only with a server and recipients.
    pub fn alerts(&self, own: Option<bool>) -> bool {
        self.server.is_some()
            && !self.to.is_empty()
            && own.or(self.alert_vrrp).or(self.alert).unwrap_or(false)
    }
}

impl Global {
    /// The interface of a static address written without `dev`.
    pub fn static_interface(&self) -> String {
        self.default_interface
            .clone()
            .unwrap_or_else(|| "eth0".into())
    }
}

impl Default for Global {
    fn default() -> Self {
        Global {
            router_id: None,
            vrrp_version: 2,
            mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_lower_prio_delay: None,
            garp_lower_prio_repeat: None,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            garp_master_refresh: None,
            garp_master_refresh_repeat: 1,
            garp_extra_if: None,
            skip_check_adv_addr: false,
            strict: false,
            enable_script_security: false,
            script_user: None,
            check_unicast_src: false,
            startup_delay: Duration::ZERO,
            v3_checksum_as_v2: false,
            notify_fifo: None,
            vrrp_notify_fifo: None,
            lvs_notify_fifo: None,
            ssl: None,
            down_timer_adverts: 3,
            default_interface: None,
            smtp: Smtp::default(),
            net_namespace: None,
            vmac_prefix: None,
            vmac_addr_prefix: None,
            scheduling: Scheduling::default(),
            startup_script: None,
            startup_script_timeout: Duration::from_secs(10),
            shutdown_script: None,
            shutdown_script_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fifo {
    pub path: PathBuf,
    /// A script keepalived starts to read the fifo.
    pub script: Option<Command>,
}

/// A command line as keepalived splits it (quotes group words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub argv: Vec<String>,
    /// The text as written, for messages.
    pub text: String,
    /// notify scripts: keepalived's `SCRIPT [user [group]]`, who runs it
    /// (script_user otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<ScriptUser>,
    #[serde(skip)]
    pub pos: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    pub script: Option<Command>,
    pub interval: Duration,
    pub timeout: Duration,
    pub weight: i32,
    /// `weight N reverse`: the weight applies while the script fails.
    pub weight_reverse: bool,
    pub rise: u32,
    pub fall: u32,
    pub user: Option<ScriptUser>,
    pub init_fail: bool,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackFileDef {
    pub name: String,
    pub file: PathBuf,
    pub weight: i32,
    pub reverse: bool,
    /// init_file [VALUE] [overwrite]
    pub init: Option<(i64, bool)>,
    #[serde(skip)]
    pub pos: Pos,
}

/// How a vrrp_track_process's parameters must match a process's command
/// line (keepalived's `param_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ParamMatch {
    /// The parameters are exactly these.
    Exact,
    /// They start with these, the last one possibly cut short.
    Initial,
    /// They start with these whole words.
    Partial,
}

/// `vrrp_track_process NAME { process PATH [PARAMS…] … }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackProcessDef {
    pub name: String,
    /// The process name (its comm) or, with `full_command` or parameters,
    /// its command line's first word.
    pub process: String,
    pub params: Vec<String>,
    /// None: any parameters.
    pub param_match: Option<ParamMatch>,
    pub full_command: bool,
    pub weight: i32,
    pub reverse: bool,
    /// Up while quorum <= running processes <= quorum_max.
    pub quorum: u32,
    pub quorum_max: u32,
    /// How long a gained quorum waits before it counts (`fork_delay`/`delay`).
    pub fork_delay: Duration,
    /// How long a lost quorum waits before it counts (`terminate_delay`/`delay`).
    pub terminate_delay: Duration,
    #[serde(skip)]
    pub pos: Pos,
}

impl TrackProcessDef {
    /// keepalived's defaults: quorum 1, no quorum_max, weight 0, no delays,
    /// the comm compared.
    pub fn new(name: &str, process: &str, pos: Pos) -> TrackProcessDef {
        TrackProcessDef {
            name: name.to_owned(),
            process: process.to_owned(),
            params: Vec::new(),
            param_match: None,
            full_command: false,
            weight: 0,
            reverse: false,
            quorum: 1,
            quorum_max: u32::MAX,
            fork_delay: Duration::ZERO,
            terminate_delay: Duration::ZERO,
            pos,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InitialState {
    Master,
    Backup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AuthType {
    Pass,
    Ah,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authentication {
    pub kind: AuthType,
    pub pass: String,
}

/// What a route does with matching packets (ip-route(8)'s TYPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// One virtual_routes line: `[src ADDR] [TYPE] [to] DEST[/LEN] [via|gw ADDR [or ADDR]...]
/// [dev IF] [scope S] [table N] [metric|preference N] [no_track]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix: u8,
    pub kind: RouteKind,
    pub via: Option<IpAddr>,
    /// `via A or B`: keepalived's multipath, each gateway a next hop.
    pub or: Vec<IpAddr>,
    pub dev: Option<String>,
    pub src: Option<IpAddr>,
    pub scope: Option<u8>,
    pub table: Option<u32>,
    pub metric: Option<u32>,
    /// `track_group NAME` (static lines only): the group's instances
    /// track this line's interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_group: Option<String>,
    #[serde(skip)]
    pub pos: Option<Pos>,
}

impl RouteKind {
    /// ip-route / ip-rule's type words (`unicast` is the default, unwritten).
    pub fn from_word(word: &str) -> Option<RouteKind> {
        match word {
            "blackhole" => Some(RouteKind::Blackhole),
            "unreachable" => Some(RouteKind::Unreachable),
            "prohibit" => Some(RouteKind::Prohibit),
            _ => None,
        }
    }
}

/// One virtual_rules line: `[from PREFIX|all] [to PREFIX] [iif IF] [oif IF]
/// [fwmark N] [priority|preference|pref N] (table N | blackhole |
/// unreachable | prohibit) [no_track]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub ipv6: bool,
    pub from: Option<(IpAddr, u8)>,
    pub to: Option<(IpAddr, u8)>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<u32>,
    pub priority: Option<u32>,
    pub table: Option<u32>,
    /// Unicast = look up `table`; the others as ip-rule's.
    pub kind: RouteKind,
    /// `track_group NAME` (static lines only): the group's instances
    /// track this line's interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_group: Option<String>,
    #[serde(skip)]
    pub pos: Option<Pos>,
}

/// One virtual_ipaddress line: `ADDR[/PREFIX] [dev IF] [label L] [brd B] [scope S]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: u8,
    pub dev: Option<String>,
    pub label: Option<String>,
    pub brd: Option<Ipv4Addr>,
    pub scope: Option<String>,
    /// `track_group NAME` (static lines only): the group's instances
    /// track this line's interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_group: Option<String>,
    /// `use_vmac` on the address line: the address goes on a vmac of its
    /// own on its interface (as use_vmac_addr does for every address
    /// off the instance's interface or family).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub use_vmac: bool,
    #[serde(skip)]
    pub pos: Option<Pos>,
}

/// A tracked item with an optional weight override and `reverse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Track {
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: bool,
    #[serde(skip)]
    pub pos: Option<Pos>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Notify {
    pub master: Option<Command>,
    pub backup: Option<Command>,
    pub fault: Option<Command>,
    pub stop: Option<Command>,
    pub deleted: Option<Command>,
    pub master_rx_lower_pri: Option<Command>,
    /// `notify`: run after the specific one with 4 arguments appended.
    pub generic: Option<Command>,
    pub fifo: Option<Fifo>,
    /// `smtp_alert [on|off]` of the instance or group (None: the global default).
    pub smtp_alert: Option<bool>,
    /// `notify_deleted [SCRIPT]`: an instance a reload removes is notified
    /// DELETED (with this script), not FAULT as keepalived does by default.
    pub notify_deleted: bool,
}

impl Notify {
    /// Every script slot (the specific ones, the generic `notify`).
    pub fn scripts_mut(&mut self) -> [&mut Option<Command>; 7] {
        [
            &mut self.master,
            &mut self.backup,
            &mut self.fault,
            &mut self.stop,
            &mut self.deleted,
            &mut self.master_rx_lower_pri,
            &mut self.generic,
        ]
    }

    /// The scripts set.
    pub fn scripts(&self) -> impl Iterator<Item = &Command> {
        [
            &self.master,
            &self.backup,
            &self.fault,
            &self.stop,
            &self.deleted,
            &self.master_rx_lower_pri,
            &self.generic,
        ]
        .into_iter()
        .flatten()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    pub name: String,
    pub state: InitialState,
    pub interface: String,
    pub vrid: u8,
    /// Configured priority (default 100; 255 when omitted with `state MASTER`).
    pub priority: u8,
    /// Advertisement interval in centiseconds.
    pub advert_int_cs: u16,
    pub version: u8,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// accept / no_accept; None = keepalived's default (on unless strict).
    pub accept: Option<bool>,
    pub auth: Option<Authentication>,
    pub vips: Vec<Vip>,
    pub vips_excluded: Vec<Vip>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<IpAddr>,
    /// unicast_peer lines' `min_ttl`/`max_ttl`: (peer, min, max), checked
    /// with check_unicast_src as keepalived does.
    pub peer_ttl: Vec<(IpAddr, u8, u8)>,
    /// `unicast_ttl`: the TTL of unicast IPv4 adverts (255 unless set).
    pub unicast_ttl: Option<u8>,
    /// `unicast_fault_no_peer`: without peers, FAULT rather than multicast.
    pub unicast_fault_no_peer: bool,
    /// `track_src_ip`: FAULT while the source address is not on the interface.
    pub track_src_ip: bool,
    pub track_interfaces: Vec<Track>,
    pub track_scripts: Vec<Track>,
    pub track_files: Vec<Track>,
    pub track_processes: Vec<Track>,
    pub notify: Notify,
    pub garp_master_delay: Option<Duration>,
    pub garp_master_repeat: Option<u32>,
    pub garp_lower_prio_delay: Option<Duration>,
    pub garp_lower_prio_repeat: Option<u32>,
    pub lower_prio_no_advert: Option<bool>,
    pub higher_prio_send_advert: Option<bool>,
    pub garp_master_refresh: Option<Duration>,
    pub garp_master_refresh_repeat: Option<u32>,
    /// `garp_extra_if [all] SECS`: periodic GARP/NA while Active for the
    /// VIPs on the vmac (every interface's with `all`); None = off.
    pub garp_extra_if: Option<(Duration, bool)>,
    /// use_vmac [NAME]: Some("") for the default name vrrp.VRID.
    pub use_vmac: Option<String>,
    /// use_vmac's MAC address (keepalived: instead of 00:00:5e:00:01:VRID;
    /// five octets take the VRID as the sixth).
    pub vmac_mac: Option<[u8; 6]>,
    /// use_vmac `group G`: the vmac's interface group (else its parent's).
    pub vmac_group: Option<u32>,
    /// use_vmac `netlink_notify_msg`.
    pub vmac_netlink_notify: bool,
    pub vmac_xmit_base: bool,
    /// `use_vmac_addr`: each address on another interface, or of the other
    /// family, goes on a vmac of its own there (the virtual MAC of its
    /// family), as keepalived.
    pub use_vmac_addr: bool,
    pub dont_track_primary: bool,
    /// promote_secondaries: net.ipv4.conf.IF.promote_secondaries = 1, so
    /// removing a VIP that is an address's primary keeps the others.
    pub promote_secondaries: bool,
    pub native_ipv6: bool,
    pub check_unicast_src: bool,
    pub skip_check_adv_addr: Option<bool>,
    pub strict: Option<bool>,
    pub down_timer_adverts: u32,
    /// `v3_checksum_as_v2` of the instance (or the global one).
    pub v3_checksum_as_v2: bool,
    /// `no_virtual_ipaddress`: no VIPs, on purpose (adverts carry none).
    pub no_virtual_ipaddress: bool,
    /// xvrrp's `mixed_v2_v3` (RFC 9568 §8.4, keepalived has none): a v3
    /// IPv4 instance that also sends and hears v2 during a migration.
    pub mixed_v2_v3: bool,
    /// `mcast_dst_ip`: this instance's group (else the global one).
    pub mcast_dst_ip: Option<IpAddr>,
    /// `virtual_routes`: installed while Active, removed otherwise.
    pub virtual_routes: Vec<Route>,
    /// `virtual_rules`: likewise.
    pub virtual_rules: Vec<Rule>,
    #[serde(skip)]
    pub pos: Pos,
}

impl Instance {
    /// The group this instance's adverts go to and are heard on:
    /// `mcast_dst_ip`, else `vrrp_mcast_group4/6`, else 224.0.0.18 / ff02::12.
    pub fn mcast_group(&self, g: &Global) -> IpAddr {
        self.mcast_dst_ip.unwrap_or(if self.is_ipv6() {
            IpAddr::V6(g.mcast_group6)
        } else {
            IpAddr::V4(g.mcast_group4)
        })
    }

    /// The vmac's MAC: use_vmac's own, else RFC 9568's virtual router MAC.
    pub fn vmac_address(&self) -> [u8; 6] {
        self.vmac_mac
            .unwrap_or_else(|| crate::wire::ethernet::virtual_mac(self.is_ipv6(), self.vrid))
    }

    /// IPv6 when the (first) VIP is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.vips.first().is_some_and(|v| v.addr.is_ipv6())
    }
}

/// keepalived's static entries, set at start and removed at a clean stop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Statics {
    pub addresses: Vec<Vip>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub members: Vec<String>,
    pub notify: Notify,
    pub track_interfaces: Vec<Track>,
    pub track_scripts: Vec<Track>,
    pub track_files: Vec<Track>,
    pub track_processes: Vec<Track>,
    /// `sync_group_tracking_weight`: the members' own tracking weights count
    /// (keepalived ignores them in a sync group otherwise).
    pub tracking_weight: bool,
    #[serde(skip)]
    pub pos: Pos,
}

/// A config line compared for what it sets, not where it is written: a
/// reload that only moves a route in the file leaves it alone.
pub trait Entry: Clone + PartialEq {
    fn without_pos(&self) -> Self;
}

impl Entry for Route {
    fn without_pos(&self) -> Self {
        Route {
            pos: None,
            ..self.clone()
        }
    }
}

impl Entry for Rule {
    fn without_pos(&self) -> Self {
        Rule {
            pos: None,
            ..self.clone()
        }
    }
}

/// The entries of `a` that `b` does not set.
pub fn minus<T: Entry>(a: &[T], b: &[T]) -> Vec<T> {
    let b: Vec<T> = b.iter().map(Entry::without_pos).collect();
    a.iter()
        .filter(|x| !b.contains(&x.without_pos()))
        .cloned()
        .collect()
}

/// Whether `a` and `b` set the same entries in the same order.
pub fn same_entries<T: Entry>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.without_pos() == y.without_pos())
}
