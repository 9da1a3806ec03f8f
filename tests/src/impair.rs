//! netem's loss and delay without sch_netem (this kernel has none, nor tc's
//! gact): a relay in the switch namespace. The host's bridge port leaves the
//! bridge; a new veth pair joins it; two threads copy frames between the
//! port and the pair, each way, dropping a share of them at random and
//! holding each for a fixed delay. Dropping the `Impairment` puts the port
//! back on the bridge.

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use xvrrp::net::packet::PacketSocket;

use crate::{
    capture::{open_timestamped, recv_timestamped, spawn_in},
    lan::Lan,
    unique, xorshift,
};

/// What a relay does to each frame, each way.
#[derive(Clone, Copy, Debug)]
pub struct Netem {
    /// Share of frames dropped (0.0..=1.0), independently per frame.
    pub loss: f64,
    /// Added to every frame that is not dropped.
    pub delay: Duration,
}

pub struct Impairment {
    switch: String,
    port: String,
    inner: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<anyhow::Result<()>>>,
    dropped: Arc<AtomicU64>,
    relayed: Arc<AtomicU64>,
}

impl Impairment {
    /// Frames dropped so far (both ways).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Frames passed on so far (both ways).
    pub fn relayed(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
    }
}

impl Lan {
    /// Puts host `i`'s bridge port behind a relay that applies `netem` to
    /// every frame, both ways, until the result is dropped.
    pub fn impair(&self, i: usize, netem: Netem) -> anyhow::Result<Impairment> {
        let switch = &self.switch;
        let port = self.host(i).port.clone();
        let (inner, outer) = (unique("ri"), unique("ro"));
        switch.ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ])?;
        switch.ip(&["link", "set", &outer, "master", "br0", "up"])?;
        switch.ip(&["link", "set", &inner, "up"])?;
        switch.ip(&["link", "set", &port, "nomaster"])?;
        let mut imp = Impairment {
            switch: switch.name.clone(),
            port: port.clone(),
            inner: inner.clone(),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            dropped: Arc::new(AtomicU64::new(0)),
            relayed: Arc::new(AtomicU64::new(0)),
        };
        for (n, (from, to)) in [(port.clone(), inner.clone()), (inner, port)]
            .into_iter()
            .enumerate()
        {
            let (stop, dropped, relayed) =
                (imp.stop.clone(), imp.dropped.clone(), imp.relayed.clone());
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            imp.threads.push(spawn_in(&switch.name, move || {
                let rx = open_timestamped(&from, Duration::from_millis(1));
                let tx = PacketSocket::open(&to, false);
                let (rx, tx) = match (rx, tx) {
                    (Ok(rx), Ok(tx)) => {
                        let _ = ready_tx.send(Ok(()));
                        (rx, tx)
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(format!("{e:#}")));
                        return Err(e);
                    }
                };
                let mut next = xorshift(0x51ed_270b_2d4c_9a37 + n as u64);
                let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    // Frames this relay sent show up as outgoing: not relayed back.
                    if let Some((len, _, false)) = recv_timestamped(&rx, &mut buf) {
                        if (next() % 1_000_000) as f64 / 1e6 < netem.loss {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        } else {
                            queue.push_back((Instant::now() + netem.delay, buf[..len].to_vec()));
                        }
                    }
                    while queue.front().is_some_and(|(due, _)| *due <= Instant::now()) {
                        let (_, frame) = queue.pop_front().expect("front");
                        if tx.send(&frame).is_ok() {
                            relayed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Ok(())
            }));
            match ready_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => anyhow::bail!("relay {n} in {}: {e}", imp.switch),
                Err(_) => anyhow::bail!("relay {n} in {} did not start", imp.switch),
            }
        }
        Ok(imp)
    }
}

impl Drop for Impairment {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let _ = crate::sh("ip", &["-n", &self.switch, "link", "del", &self.inner]);
        let _ = crate::sh(
            "ip",
            &[
                "-n",
                &self.switch,
                "link",
                "set",
                &self.port,
                "master",
                "br0",
            ],
        );
    }
}
