//! The event loop's own deadline: a timerfd on CLOCK_MONOTONIC (the clock
//! of `Instant`) that the runtime's epoll watches.
//!
//! Why not `tokio::time::sleep_until`: each turn the loop sets its next
//! deadline right after the last one fired, when tokio's timer wheel holds
//! none earlier; tokio then unparks its own driver (an eventfd write) and
//! its next park returns at once — a steady Active paid a write, a second
//! epoll_wait and a second turn of the loop for every round of adverts
//! (seen with `perf trace` at 255 routers). Re-arming a timerfd is one
//! system call and wakes nothing.

use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    time::Instant,
};

use nix::sys::{
    time::TimeSpec,
    timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags},
};
use tokio::io::unix::AsyncFd;

/// A timerfd, as the runtime's readiness needs it.
struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// When the loop must wake next, armed in the kernel.
pub(super) struct Deadline {
    fd: AsyncFd<Fd>,
    /// What the timer is armed for; None once it fired (the next `set`
    /// re-arms it whatever the time).
    armed: Option<Instant>,
}

impl Deadline {
    pub fn new() -> io::Result<Deadline> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        Ok(Deadline {
            fd: crate::net::async_fd(Fd(fd))?,
            armed: None,
        })
    }

    /// Wakes the loop at `at` (never, for None). Leaves the timer as it is
    /// when it is armed for that time already: a turn woken by anything
    /// else costs no system call here.
    pub fn set(&mut self, at: Option<Instant>) -> io::Result<()> {
        if self.armed.is_some() && self.armed == at {
            return Ok(());
        }
        let timer = &self.fd.get_ref().0;
        match at {
            // Relative: `Instant` has no public clock value to make it
            // absolute. A zero value would disarm: a deadline already
            // passed fires in a nanosecond.
            Some(at) => {
                let after = at
                    .saturating_duration_since(Instant::now())
                    .max(std::time::Duration::from_nanos(1));
                timer.set(
                    Expiration::OneShot(TimeSpec::from_duration(after)),
                    TimerSetTimeFlags::empty(),
                )?
            }
            None => timer.unset()?,
        }
        self.armed = at;
        Ok(())
    }

    /// Until the timer fires. Re-arming (`set`) clears an expiry not read,
    /// so the count is never read: the next `set` re-arms it.
    pub async fn fired(&mut self) {
        if let Ok(mut ready) = self.fd.readable().await {
            ready.clear_ready();
        }
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The timer fires at its deadline (never before), fires again once
    /// re-armed for the same time, and never without a deadline.
    #[tokio::test]
    async fn fires_at_its_deadline_and_again_once_rearmed() {
        let mut d = Deadline::new().unwrap();
        let ms = Duration::from_millis;
        for _ in 0..2 {
            let t0 = Instant::now();
            d.set(Some(t0 + ms(20))).unwrap();
            tokio::time::timeout(ms(2000), d.fired())
                .await
                .expect("fired");
            assert!(t0.elapsed() >= ms(20), "fired early: {:?}", t0.elapsed());
        }
        // A deadline already passed fires at once.
        d.set(Some(Instant::now() - ms(5))).unwrap();
        tokio::time::timeout(ms(2000), d.fired())
            .await
            .expect("fired");
        d.set(None).unwrap();
        assert!(
            tokio::time::timeout(ms(50), d.fired()).await.is_err(),
            "no deadline, no wake"
        );
    }
}
