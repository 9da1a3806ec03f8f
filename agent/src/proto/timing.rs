//! The election's timer arithmetic, in one place (FRR's habit).

use std::time::Duration;

use crate::wire::vrrp::Version;

/// RFC 9568 §6.1: Skew_Time = ((256 - Priority) * Active_Adver_Interval) / 256
/// and Active_Down_Interval = 3 * Active_Adver_Interval + Skew_Time.
/// RFC 3768 §6.1 (v2) is the same with Advertisement_Interval in whole seconds
/// (100 cs), so one formula serves both. keepalived's `down_timer_adverts`
/// replaces the 3. Computed in microseconds so short intervals keep their skew.
pub fn skew(priority: u8, interval_cs: u16) -> Duration {
    let us = (256 - priority as u64) * interval_cs as u64 * 10_000 / 256;
    Duration::from_micros(us)
}

/// Active_Down_Interval for a learned interval and our (effective) priority.
pub fn active_down(priority: u8, interval_cs: u16, adverts: u32) -> Duration {
    interval(interval_cs) * adverts + skew(priority, interval_cs)
}

/// The interval Skew_Time scales with: in v3 the Active's advert interval
/// (RFC 9568 §6.1); in v2 one second whatever the advert interval (RFC 3768
/// §6.1: (256 - Priority) / 256 seconds; keepalived and FRR agree).
pub fn skew_base_cs(version: Version, interval_cs: u16) -> u16 {
    match version {
        Version::V2 => 100,
        Version::V3 => interval_cs,
    }
}

/// Active_Down_Interval for a router of `version`.
pub fn active_down_for(version: Version, priority: u8, interval_cs: u16, adverts: u32) -> Duration {
    interval(interval_cs) * adverts + skew(priority, skew_base_cs(version, interval_cs))
}

/// An interval in centiseconds as a Duration.
pub fn interval(cs: u16) -> Duration {
    Duration::from_millis(cs as u64 * 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9568_6_1_skew_and_down_interval() {
        // Priority 100, 1 s: skew = 156/256 s = 609.375 ms; down = 3.609375 s.
        assert_eq!(skew(100, 100), Duration::from_micros(609_375));
        assert_eq!(active_down(100, 100, 3), Duration::from_micros(3_609_375));
        // Priority 255 has the smallest skew, priority 1 the largest.
        assert!(skew(255, 100) < skew(254, 100));
        assert!(skew(1, 100) < interval(100));
    }

    #[test]
    fn rfc3768_6_1_v2_whole_seconds() {
        // v2: (256 - Priority) / 256 seconds, interval 1 s.
        assert_eq!(skew(150, 100).as_micros(), 106 * 1_000_000 / 256);
    }

    #[test]
    fn rfc3768_6_1_v2_skew_is_whole_seconds_whatever_the_interval() {
        // advert_int 3: skew (256 - 100) / 256 s, not three times that.
        assert_eq!(
            active_down_for(Version::V2, 100, 300, 3),
            Duration::from_secs(9) + Duration::from_micros(609_375)
        );
        assert_eq!(
            active_down_for(Version::V3, 100, 300, 3),
            Duration::from_secs(9) + Duration::from_micros(3 * 609_375)
        );
    }

    #[test]
    fn down_timer_adverts_replaces_the_three() {
        assert_eq!(
            active_down(200, 10, 5) - skew(200, 10),
            Duration::from_millis(500)
        );
    }
}
