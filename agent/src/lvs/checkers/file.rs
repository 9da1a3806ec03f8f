//! FILE_CHECK, as keepalived's: the value of a track_file's file (a number;
//! unreadable or empty reads 0). Without `weight` the real is up while the
//! value is 0 (`reverse`: while it is not); with it, value × weight
//! (negated by `reverse`) of -254 or less is down, and with `dynamic` the
//! real's weight becomes its configured weight plus that product. Read every
//! delay_loop (keepalived watches the file with inotify).

use std::path::Path;

use super::Outcome;

pub struct File<'a> {
    pub path: Option<&'a Path>,
    pub dynamic: bool,
    pub weight: i64,
    pub reverse: bool,
    /// The real's configured weight (dynamic adds to it).
    pub base: u32,
}

/// keepalived's IPVS_WEIGHT_FAULT: a product at or below it is a fault.
const FAULT: i64 = -254;

pub async fn check(name: &str, f: &File<'_>) -> Outcome {
    let Some(path) = f.path else {
        return Outcome::Down(format!("FILE_CHECK: no track_file {name}"));
    };
    // A small local file: read in place (as the VRRP track_file reader does).
    let value = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|w| w.parse::<i64>().ok())
        })
        .unwrap_or(0);
    judge(value, f, &path.display().to_string())
}

pub fn judge(value: i64, f: &File<'_>, what: &str) -> Outcome {
    if f.weight == 0 {
        let up = (value == 0) != f.reverse;
        return if up {
            Outcome::Up
        } else {
            Outcome::Down(format!("FILE_CHECK {what}: value {value}"))
        };
    }
    let product = value.saturating_mul(f.weight) * if f.reverse { -1 } else { 1 };
    if product <= FAULT {
        return Outcome::Down(format!(
            "FILE_CHECK {what}: value {value} × weight {} is a fault",
            f.weight
        ));
    }
    if f.dynamic {
        Outcome::UpWeight((i64::from(f.base) + product).clamp(0, i64::from(u32::MAX)) as u32)
    } else {
        Outcome::Up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(weight: i64, reverse: bool, dynamic: bool) -> File<'static> {
        File {
            path: None,
            dynamic,
            weight,
            reverse,
            base: 10,
        }
    }

    #[test]
    fn values_read_as_keepalived_reads_them() {
        assert_eq!(judge(0, &f(0, false, false), "x"), Outcome::Up);
        assert!(!judge(3, &f(0, false, false), "x").ok());
        assert!(!judge(0, &f(0, true, false), "x").ok());
        assert_eq!(judge(3, &f(0, true, false), "x"), Outcome::Up);
        assert_eq!(judge(2, &f(5, false, true), "x"), Outcome::UpWeight(20));
        assert_eq!(judge(-1, &f(5, false, true), "x"), Outcome::UpWeight(5));
        assert!(!judge(-100, &f(5, false, true), "x").ok());
        assert!(!judge(100, &f(5, true, false), "x").ok());
    }
}
