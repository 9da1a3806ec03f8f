//! keepalived's `vrrp_priority`, `vrrp_rt_priority`, `vrrp_rlimit_rttime`
//! and `vrrp_no_swap`: how the agent is scheduled. keepalived sets them on
//! its VRRP process; xvrrp is one process, so every thread of it gets them
//! (threads started later inherit them from their creator). Applied once
//! the agent has started (the XDP program's verifier can take a second of
//! CPU in one system call); a later load (a reload with another interface)
//! runs outside the real-time policy.

use tracing::{info, warn};

use crate::config::model::Scheduling;

/// Applies `s`; what the kernel refuses is a warning naming the missing
/// privilege, and the agent runs on as it was.
pub fn apply(s: &Scheduling) {
    if let Some(nice) = s.nice {
        for tid in threads() {
            // SAFETY: setpriority on one of our own threads.
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
                let e = std::io::Error::last_os_error();
                warn!("vrrp_priority {nice}: setpriority: {e} (a negative nice value needs CAP_SYS_NICE)");
                break;
            }
        }
        info!("vrrp_priority: nice {nice}");
    }
    if let Some(prio) = s.rt_priority {
        // keepalived limits its VRRP process to 10 ms of CPU without
        // sleeping by default; xvrrp's one process also builds Maglev
        // tables (tens of ms for large pools), which the kernel would kill
        // it for: the limit is set only when vrrp_rlimit_rttime asks.
        if let Some(rttime) = s.rlimit_rttime {
            let lim = libc::rlimit {
                rlim_cur: rttime,
                rlim_max: rttime,
            };
            // SAFETY: setrlimit with a valid rlimit.
            if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &lim) } != 0 {
                warn!(
                    "vrrp_rlimit_rttime {rttime}: setrlimit: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        let param = libc::sched_param {
            sched_priority: prio as i32,
        };
        let mut ok = true;
        for tid in threads() {
            // SAFETY: sched_setscheduler on one of our own threads with a
            // valid sched_param.
            if unsafe { libc::sched_setscheduler(tid as libc::pid_t, libc::SCHED_RR, &param) } != 0
            {
                let e = std::io::Error::last_os_error();
                warn!("vrrp_rt_priority {prio}: sched_setscheduler: {e} (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of {prio})");
                ok = false;
                break;
            }
        }
        if ok {
            info!(
                "vrrp_rt_priority: SCHED_RR priority {prio}{}",
                s.rlimit_rttime
                    .map(|t| format!(", RLIMIT_RTTIME {t} µs"))
                    .unwrap_or_default()
            );
        }
    } else if s.rlimit_rttime.is_some() {
        info!("vrrp_rlimit_rttime without vrrp_rt_priority: nothing to limit");
    }
    if s.no_swap {
        // SAFETY: plain mlockall.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            warn!(
                "vrrp_no_swap: mlockall: {} (needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK)",
                std::io::Error::last_os_error()
            );
        } else {
            info!("vrrp_no_swap: memory locked");
        }
    }
}

/// Runs `f` on the calling thread under the normal policy, then restores
/// the thread's own: loading the XDP program keeps the kernel's verifier
/// busy for a second or more in one system call, which under SCHED_RR
/// would pass RLIMIT_RTTIME (and starve the CPU meanwhile).
pub fn without_realtime<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: sched_getscheduler/getparam/setscheduler on this thread.
    unsafe {
        let policy = libc::sched_getscheduler(0);
        let mut param = libc::sched_param { sched_priority: 0 };
        let realtime = matches!(policy, libc::SCHED_RR | libc::SCHED_FIFO)
            && libc::sched_getparam(0, &mut param) == 0;
        if !realtime {
            return f();
        }
        let normal = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal);
        let out = f();
        libc::sched_setscheduler(0, policy, &param);
        out
    }
}

/// The ids of this process's threads (/proc/self/task).
fn threads() -> Vec<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
