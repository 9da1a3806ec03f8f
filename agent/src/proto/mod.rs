//! The election: one virtual router as a pure state machine (RFC 9568 §6.4,
//! RFC 3768 for v2). No clock, no socket, no file: `handle(now, Input)`
//! returns the actions to take, `next_deadline()` says when to call again.

pub mod group;
pub mod router;
pub mod timing;

use std::{fmt, net::IpAddr, time::Duration};

pub use router::Router;

use crate::wire::vrrp::{self, Auth, ChecksumMode, Family, Version};

/// RFC 9568 §6.4 states, plus keepalived's FAULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum State {
    Initialize,
    Backup,
    Active,
    /// keepalived's FAULT: a tracked check or the interface is down.
    Fault,
}

impl State {
    /// keepalived's word for the state, as notify scripts and fifos get it.
    pub fn keepalived_name(self) -> &'static str {
        match self {
            State::Initialize => "STOP",
            State::Backup => "BACKUP",
            State::Active => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "Initialize",
            State::Backup => "Backup",
            State::Active => "Active",
            State::Fault => "Fault",
        })
    }
}

/// Gratuitous ARP / unsolicited NA schedule after becoming Active
/// (keepalived's vrrp_garp_* / garp_master_* settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpSchedule {
    /// Rounds sent at once on becoming Active (garp_master_repeat, default 5).
    pub repeat: u32,
    /// Delay of the second burst (garp_master_delay, default 5 s; 0 = none).
    pub delay: Duration,
    /// Refresh period while Active (garp_master_refresh; None = off).
    pub refresh: Option<Duration>,
    /// Rounds per refresh (garp_master_refresh_repeat, default 1).
    pub refresh_repeat: u32,
    /// garp_extra_if's period while Active and its `all` (None = off).
    pub extra_if: Option<(Duration, bool)>,
    /// Spacing between rounds (vrrp_garp_interval; 0 = back to back).
    pub interval: Duration,
    /// Rounds sent at once when the Active hears a lower-priority Active
    /// (garp_lower_prio_repeat; keepalived's default: garp_master_repeat),
    /// so caches a split brain poisoned point back here; 0 = none.
    pub lower_prio_repeat: u32,
    /// Delay of a second such burst (garp_lower_prio_delay; keepalived's
    /// default: garp_master_delay; 0 = none).
    pub lower_prio_delay: Duration,
}

impl Default for GarpSchedule {
    fn default() -> Self {
        GarpSchedule {
            repeat: 5,
            delay: Duration::from_secs(5),
            refresh: None,
            refresh_repeat: 1,
            extra_if: None,
            interval: Duration::ZERO,
            lower_prio_repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
        }
    }
}

/// What the election needs to know about one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: String,
    pub vrid: u8,
    pub family: Family,
    pub version: Version,
    /// RFC 9568 §8.4: a v3 router that also speaks v2 to v2 routers.
    pub mixed_v2: bool,
    /// Configured priority; 255 = address owner.
    pub priority: u8,
    /// Advertisement_Interval in centiseconds (v2: a multiple of 100).
    pub interval_cs: u16,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// RFC 9568 §6.1 Accept_Mode: accept packets to the VIPs when not owner.
    pub accept: bool,
    /// v2 authentication (v3 has none).
    pub auth: Auth,
    pub vips: Vec<IpAddr>,
    /// Our primary address: advert source and tie-breaker.
    pub primary: IpAddr,
    /// When set, adverts are accepted only from these and sent to them.
    pub unicast_peers: Vec<IpAddr>,
    /// Peers' TTL ranges (min_ttl/max_ttl), checked with check_unicast_src.
    pub peer_ttl: Vec<(IpAddr, u8, u8)>,
    /// The multiplier in Active_Down_Interval (keepalived down_timer_adverts, 3).
    pub down_timer_adverts: u32,
    /// vrrp_skip_check_adv_addr: don't compare addresses of the Active's adverts.
    pub skip_check_adv_addr: bool,
    /// check_unicast_src / vrrp_check_unicast_src: adverts from a source not
    /// in unicast_peer are dropped (keepalived's default: heard, reported).
    pub check_unicast_src: bool,
    /// Checksum form to send (v3/IPv4); receive accepts both.
    pub checksum: ChecksumMode,
    pub garp: GarpSchedule,
    /// lower_prio_no_advert: an Active hearing a lower priority does not
    /// answer with an advert (RFC 3768's behaviour; keepalived's default off).
    pub lower_prio_no_advert: bool,
    /// higher_prio_send_advert: an Active sent to Backup by a higher
    /// priority first sends one more advert (keepalived, default off).
    pub higher_prio_send_advert: bool,
}

impl Config {
    /// A v3 config with RFC defaults, for tests and as a base.
    pub fn new(name: &str, vrid: u8, primary: IpAddr, vips: Vec<IpAddr>) -> Config {
        Config {
            name: name.to_owned(),
            vrid,
            family: Family::of(&primary),
            version: Version::V3,
            mixed_v2: false,
            priority: 100,
            interval_cs: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: true,
            auth: Auth::None,
            vips,
            primary,
            unicast_peers: Vec::new(),
            peer_ttl: Vec::new(),
            down_timer_adverts: 3,
            skip_check_adv_addr: false,
            check_unicast_src: false,
            checksum: ChecksumMode::PseudoHeader,
            garp: GarpSchedule::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
        }
    }

    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }
}

/// One advert as the election sees it: already checksum-verified and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    /// IP TTL / hop limit.
    pub ttl: u8,
    /// Sent to one of our unicast addresses (TTL check exempt, as keepalived).
    pub unicast: bool,
    pub advert: vrrp::Repr,
}

/// What happened, fed to `Router::handle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Startup,
    Shutdown,
    Advert(Received),
    /// A deadline passed (any of them): the router works out which.
    Timeout,
    /// Tracking changed: the sum of weights of tracked items, and whether a
    /// tracked item without weight (or the interface) is down.
    Health {
        weight: i32,
        fault: bool,
    },
    /// A sync group moves this member (vrrp_sync_group).
    Group(State),
    /// A reload changed this router's configuration without changing its
    /// identity (interface, VRID, family): the state carries on; only what
    /// the protocol implies follows (docs/design.md rule 6).
    Reconfigure(Box<Config>),
    /// Instead of Startup: a restarted agent found this router Active in
    /// the re-adopted dataplane (same config); it carries on as Active at once,
    /// without GARP or notify, since nothing changed on the network.
    Resume,
}

/// Why a transition happened: logged, shown in status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Startup as address owner (priority 255).
    Owner,
    /// Startup as a non-owner.
    Startup,
    /// Active_Down_Timer fired without hearing the Active.
    ActiveDown,
    HigherPriority {
        from: IpAddr,
        priority: u8,
    },
    /// Same priority, higher primary address.
    HigherAddress {
        from: IpAddr,
        priority: u8,
    },
    Shutdown,
    Fault,
    FaultCleared,
    Group(State),
    /// Restarted with the re-adopted dataplane: Active again, no change on the wire.
    Resumed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Owner => write!(f, "address owner (priority 255) at startup"),
            Reason::Startup => write!(f, "startup"),
            Reason::ActiveDown => write!(f, "master down timer expired"),
            Reason::HigherPriority { from, priority } => {
                write!(f, "higher priority {priority} from {from}")
            }
            Reason::HigherAddress { from, priority } => {
                write!(f, "equal priority {priority} from higher address {from}")
            }
            Reason::Shutdown => write!(f, "shutdown"),
            Reason::Fault => write!(f, "tracked item or interface down"),
            Reason::FaultCleared => write!(f, "all tracked items healthy again"),
            Reason::Group(s) => write!(f, "sync group moved to {s}"),
            Reason::Resumed => write!(
                f,
                "resumed from the re-adopted dataplane (restart, no change on the network)"
            ),
        }
    }
}

/// Why an advert was not used (counted per reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Discard {
    /// RFC 9568 §7.1: TTL / hop limit not 255.
    Ttl,
    /// Sent to a unicast address while this instance speaks multicast, or
    /// to the group while it speaks unicast (keepalived's rule).
    Destination,
    /// RFC 3768 §7.1: authentication type or password differs.
    Auth,
    /// RFC 3768 §7.1: v2 Adver Interval differs from ours.
    Interval,
    /// Not from a configured unicast peer.
    NotPeer,
    /// Our own advert, looped back.
    Own,
    /// A version we are not configured to hear.
    Version,
    /// Another family than this router's.
    Family,
    /// Another router claims to own the addresses (priority 255) while we
    /// are their owner: a misconfiguration, never followed.
    OtherOwner,
    /// Lower priority while we preempt: RFC 9568 §6.4.2 says discard.
    LowerPriority,
    /// v2 advert from a router we hear v3 from (RFC 9568 §8.4).
    MixedDuplicate,
}

impl Discard {
    pub fn name(self) -> &'static str {
        match self {
            Discard::Ttl => "ttl",
            Discard::Destination => "destination",
            Discard::Auth => "auth",
            Discard::Interval => "interval",
            Discard::NotPeer => "not_unicast_peer",
            Discard::Own => "own",
            Discard::Version => "version",
            Discard::Family => "family",
            Discard::LowerPriority => "lower_priority",
            Discard::OtherOwner => "other_owner",
            Discard::MixedDuplicate => "mixed_duplicate",
        }
    }
}

/// What the agent must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advert (to the group, or to every unicast peer). Shared:
    /// a steady Active hands out the same one every interval.
    SendAdvert(std::sync::Arc<vrrp::Repr>),
    AddVips,
    RemoveVips,
    /// One round of gratuitous ARP (IPv4 VIPs) / unsolicited NA (IPv6 VIPs).
    SendGarp,
    /// garp_extra_if's periodic round: the VIPs on the vmac, or `all`.
    SendGarpExtra {
        all: bool,
    },
    /// Tell the dataplane whether we answer for the VIPs, and accept mode.
    Dataplane {
        active: bool,
        accept: bool,
    },
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
    /// Run notify scripts / fifo for this state.
    Notify {
        state: State,
        priority: u8,
    },
    /// An advert for our VRID carries other addresses than ours (the seed's
    /// "ip address associated with VRID not present in MASTER advert").
    Conflict {
        from: IpAddr,
        theirs: Vec<IpAddr>,
        ours: Vec<IpAddr>,
    },
    /// An advert was not used.
    Discarded {
        from: IpAddr,
        reason: Discard,
    },
    /// The effective priority changed (tracking).
    Priority {
        from: u8,
        to: u8,
    },
    /// The learned Active_Adver_Interval differs from ours (v3: adopted).
    IntervalLearned {
        from: IpAddr,
        interval_cs: u16,
    },
    /// We are Active and another router claims Active at a lower priority:
    /// a split brain healing (keepalived's notify_master_rx_lower_pri).
    /// Reported at most once per SPLIT_BRAIN_REPORT_EVERY per source, so an
    /// endless split brain does not run the script on every advert.
    SplitBrain {
        from: IpAddr,
        priority: u8,
    },
    /// An advert from a source outside unicast_peer, heard anyway
    /// (keepalived without check_unicast_src): reported once per source.
    NotAPeer {
        from: IpAddr,
    },
}

#[cfg(test)]
mod tests;
