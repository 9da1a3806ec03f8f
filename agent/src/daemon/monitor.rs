//! `xvrrp run --interface IF`: the XDP program alone, logging adverts.

use anyhow::Context as _;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use crate::dataplane::{self, AttachMode, Dataplane};

/// `xvrrp run --interface IF`: attach the XDP program and log every VRRP
/// advert it reports until SIGINT/SIGTERM, then detach.
pub async fn run_monitor(interface: &str, mode: AttachMode) -> anyhow::Result<()> {
    // The monitor's own program would replace the one on the interface: never
    // take an agent's dataplane (or another tool's program) away.
    if let Some(att) = dataplane::netlink::query(crate::net::iface::ifindex(interface)?)? {
        anyhow::bail!(
            "{interface} already has an XDP program (id {}, {} mode; `bpftool prog show id {}`): \
             the monitor would replace it. Stop the agent using it first, or monitor from the peer",
            att.prog_id,
            att.mode,
            att.prog_id
        );
    }
    let mut dp = Dataplane::attach(interface, mode, false)?;
    let mut events = dp.take_events()?;
    info!(interface, mode = %dp.mode(), "XDP program attached");
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    loop {
        tokio::select! {
            batch = events.next_batch() => {
                for record in batch? {
                    if record.reason == xvrrp_common::reason::INVALID {
                        let why = xvrrp_common::counter::NAMES
                            .get(record.detail as usize)
                            .copied()
                            .unwrap_or("invalid");
                        warn!(src = %dataplane::record_source(&record), why, "invalid VRRP packet dropped (further ones from it this second only counted)");
                        continue;
                    }
                    info!(
                        src = %dataplane::record_source(&record),
                        ifindex = record.ifindex,
                        version = record.version,
                        vrid = record.vrid,
                        priority = record.priority,
                        interval_cs = record.interval_cs,
                        addresses = record.addr_count,
                        "advert"
                    );
                }
            }
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    match dp.counters() {
        Ok(counters) => {
            let line: Vec<String> = counters
                .named()
                .filter(|(_, v)| *v > 0)
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            info!(counters = %line.join(" "), "final counters");
        }
        Err(err) => warn!("reading counters: {err:#}"),
    }
    dp.detach()?;
    info!(interface, "XDP program detached");
    Ok(())
}
