//! The status snapshot `xvrrp status` shows.

use super::*;

impl Daemon {
    pub(super) fn status(&mut self) -> Status {
        if let Some(t) = &self.tracker {
            for g in &mut self.groups {
                for m in &mut g.members {
                    m.checks = t.health(&self.config, &m.instance).2;
                }
            }
        }
        // The adverts of lent Adver_Timers, counted in the table meanwhile.
        for (g, m, sent) in self.rounds.count() {
            if let Some(member) = self.groups.get_mut(g).and_then(|g| g.members.get_mut(m)) {
                member.stats.sent += sent;
            }
        }
        Status {
            pid: std::process::id(),
            config: self.opts.config.display().to_string(),
            instances: self
                .groups
                .iter()
                .flat_map(|g| {
                    g.members
                        .iter()
                        .zip(g.sg.members())
                        .map(|(m, r)| m.status(r))
                })
                .collect(),
            counters: {
                let mut c = self.counters.clone();
                c.insert("wakeups".into(), self.wakeups);
                // Adverts sent and the system calls they took (sendmmsg:
                // one per socket and round).
                let (calls, sent) = self.tx.values().fold((0, 0), |(c, s), tx| {
                    use std::sync::atomic::Ordering::Relaxed;
                    (c + tx.calls.load(Relaxed), s + tx.sent.load(Relaxed))
                });
                c.insert("advert_send_calls".into(), calls);
                c.insert("adverts_sent".into(), sent);
                // The advert fan-out's rounds (docs/design.md rule 3).
                c.insert("fanout_fallbacks".into(), self.rounds.fallbacks);
                for f in self.fanouts.values().flatten() {
                    for (name, v) in f.lock().expect("fan-out lock").counters() {
                        *c.entry(name.into()).or_default() += v;
                    }
                }
                c
            },
            xdp: self
                .xdp
                .values()
                .flatten()
                .map(|x| {
                    let dp = x.lock().expect("dataplane lock");
                    control::XdpStatus {
                        interface: dp.interface().to_owned(),
                        mode: dp.mode().to_string(),
                        prog_id: dp.prog_id(),
                        counters: dp
                            .counters()
                            .map(|c| c.named().map(|(k, v)| (k.to_owned(), v)).collect())
                            .unwrap_or_default(),
                    }
                })
                .collect(),
            fail_silent: self
                .fail_silent
                .iter()
                .map(|(interface, (on, why))| control::FailSilent {
                    interface: interface.clone(),
                    on: *on,
                    why: why.clone(),
                })
                .collect(),
            virtual_servers: self.lvs.as_ref().map(|e| e.status()).unwrap_or_default(),
        }
    }
}
