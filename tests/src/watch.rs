//! What a client sees of a VIP: it asks ARP for it every few milliseconds
//! (a `Prober`) while a `Capture` on its interface records the requests and
//! every answer, with kernel timestamps. The report says who answered each
//! request, how often the answering MAC changed, how many requests went
//! unanswered, and whether two hosts ever answered the same request.

use std::{collections::BTreeMap, net::Ipv4Addr, time::Duration};

use crate::capture::{now_ns, Capture, Event, Prober, Seen};

/// A running watch from a client namespace.
pub struct ArpWatch {
    capture: Capture,
    prober: Option<Prober>,
    started_ns: u64,
}

/// One request and the MACs that answered it (before the next request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub ts_ns: u64,
    pub macs: Vec<[u8; 6]>,
}

/// What the client saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub requests: Vec<Answered>,
    /// VRRP adverts seen: time, source MAC, priority.
    pub adverts: Vec<(u64, [u8; 6], u8)>,
}

impl ArpWatch {
    /// Starts asking for `vip` from `eth0` of namespace `ns` every `period`.
    pub fn start(
        ns: &str,
        client: Ipv4Addr,
        vip: Ipv4Addr,
        period: Duration,
    ) -> anyhow::Result<ArpWatch> {
        let capture = Capture::start(ns, vip.into())?;
        let started_ns = now_ns();
        let prober = Prober::start(ns, client, "fd00::1".parse()?, vip.into(), period)?;
        Ok(ArpWatch {
            capture,
            prober: Some(prober),
            started_ns,
        })
    }

    /// Stops asking, waits `settle` for the last answers, and reports every
    /// request since the start.
    pub fn stop(mut self, settle: Duration) -> Report {
        drop(self.prober.take());
        std::thread::sleep(settle);
        Report::from_events(&self.capture.since(self.started_ns))
    }

    /// The report so far (requests still going on).
    pub fn report(&self) -> Report {
        Report::from_events(&self.capture.since(self.started_ns))
    }
}

impl Report {
    /// Requests and the answers between each and the next; the last
    /// request's window stays open to the end of the capture.
    pub fn from_events(events: &[Event]) -> Report {
        let mut events = events.to_vec();
        events.sort_by_key(|e| e.ts_ns);
        let mut requests: Vec<Answered> = Vec::new();
        let mut adverts = Vec::new();
        for e in events {
            match e.seen {
                Seen::Probe => requests.push(Answered {
                    ts_ns: e.ts_ns,
                    macs: Vec::new(),
                }),
                Seen::Answer { mac } => {
                    if let Some(last) = requests.last_mut() {
                        if !last.macs.contains(&mac) {
                            last.macs.push(mac);
                        }
                    }
                }
                Seen::Advert { mac, priority } => adverts.push((e.ts_ns, mac, priority)),
                Seen::Announce { .. } => {}
            }
        }
        Report { requests, adverts }
    }

    /// Requests nobody answered.
    pub fn unanswered(&self) -> usize {
        self.requests.iter().filter(|r| r.macs.is_empty()).count()
    }

    /// Requests answered by more than one host (layer-2 split brain).
    pub fn answered_twice(&self) -> usize {
        self.requests.iter().filter(|r| r.macs.len() > 1).count()
    }

    /// How often the answering MAC changed from one answered request to the next.
    pub fn mac_changes(&self) -> usize {
        let firsts: Vec<[u8; 6]> = self
            .requests
            .iter()
            .filter_map(|r| r.macs.first().copied())
            .collect();
        firsts.windows(2).filter(|w| w[0] != w[1]).count()
    }

    /// Answers per MAC.
    pub fn by_mac(&self) -> BTreeMap<[u8; 6], usize> {
        let mut m = BTreeMap::new();
        for r in &self.requests {
            for mac in &r.macs {
                *m.entry(*mac).or_default() += 1;
            }
        }
        m
    }

    /// Answers from `mac` to requests sent after `ts_ns`.
    pub fn answers_from_after(&self, mac: [u8; 6], ts_ns: u64) -> usize {
        self.requests
            .iter()
            .filter(|r| r.ts_ns >= ts_ns && r.macs.contains(&mac))
            .count()
    }

    /// When `mac` first answered, if it did.
    pub fn first_answer_from(&self, mac: [u8; 6]) -> Option<u64> {
        self.requests
            .iter()
            .find(|r| r.macs.contains(&mac))
            .map(|r| r.ts_ns)
    }

    /// The priority of the last advert from `mac`.
    pub fn last_priority_from(&self, mac: [u8; 6]) -> Option<u8> {
        self.adverts.iter().rev().find(|a| a.1 == mac).map(|a| a.2)
    }

    /// A one-line summary for assertion messages.
    pub fn summary(&self) -> String {
        let by: Vec<String> = self
            .by_mac()
            .iter()
            .map(|(m, n)| format!("{}={n}", xvrrp::net::probe::format_mac(m)))
            .collect();
        format!(
            "{} requests, {} unanswered, {} answered twice, {} answering-MAC changes, answers {}",
            self.requests.len(),
            self.unanswered(),
            self.answered_twice(),
            self.mac_changes(),
            by.join(" ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_changes_gaps_and_double_answers() {
        let (a, b) = ([1; 6], [2; 6]);
        let ev = |ts_ns, seen| Event { ts_ns, seen };
        let r = Report::from_events(&[
            ev(1, Seen::Probe),
            ev(2, Seen::Answer { mac: a }),
            ev(3, Seen::Probe),
            ev(5, Seen::Probe),
            ev(6, Seen::Answer { mac: a }),
            ev(6, Seen::Answer { mac: b }),
            ev(7, Seen::Probe),
            ev(8, Seen::Answer { mac: b }),
        ]);
        assert_eq!(r.requests.len(), 4);
        assert_eq!(r.unanswered(), 1);
        assert_eq!(r.answered_twice(), 1);
        assert_eq!(r.mac_changes(), 1);
        assert_eq!(r.answers_from_after(a, 4), 1);
        assert_eq!(r.first_answer_from(b), Some(5));
    }
}
