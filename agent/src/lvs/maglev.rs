//! Weighted Maglev (Eisenbud et al., NSDI 2016; weights as Katran's
//! MaglevV2): a prime-sized table where each real fills slots in the order
//! of its own permutation, as often as its weight says. The permutation
//! comes from the real's address and port only, so every load balancer with
//! the same reals and weights builds the same table and picks the same real
//! for a flow; a change of one real moves few slots of the others.

use std::net::SocketAddr;

/// One real in the table: who it is (what its permutation comes from),
/// its weight, and the value its slots hold.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub addr: SocketAddr,
    pub weight: u32,
    pub value: u32,
}

/// FNV-1a 64 with a seed: fixed across builds and hosts (std's hasher is
/// randomly keyed).
fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // A finaliser: FNV's low bits alone mix poorly.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

fn identity(a: &SocketAddr) -> Vec<u8> {
    let mut v = match a.ip() {
        std::net::IpAddr::V4(x) => x.octets().to_vec(),
        std::net::IpAddr::V6(x) => x.octets().to_vec(),
    };
    v.extend_from_slice(&a.port().to_be_bytes());
    v
}

/// The table of `size` slots (a prime) for these reals: each slot holds a
/// real's `value`; 0 everywhere when no real has weight.
pub fn table(reals: &[Entry], size: u32) -> Vec<u32> {
    let m = u64::from(size);
    let mut live: Vec<&Entry> = reals.iter().filter(|r| r.weight > 0).collect();
    // The same order on every host, whatever the config's order.
    live.sort_by_key(|r| identity(&r.addr));
    let mut out = vec![0u32; size as usize];
    if live.is_empty() {
        return out;
    }
    let perms: Vec<(u64, u64)> = live
        .iter()
        .map(|r| {
            let id = identity(&r.addr);
            (
                fnv(0x5bd1_e995, &id) % m,
                fnv(0x1b87_3593, &id) % (m - 1) + 1,
            )
        })
        .collect();
    let max_weight = u64::from(live.iter().map(|r| r.weight).max().unwrap_or(1));
    let mut next = vec![0u64; live.len()];
    let mut credit = vec![0u64; live.len()];
    let mut filled = vec![false; size as usize];
    let mut placed = 0u64;
    while placed < m {
        for (i, r) in live.iter().enumerate() {
            credit[i] += u64::from(r.weight);
            if credit[i] < max_weight {
                continue;
            }
            credit[i] -= max_weight;
            let (offset, skip) = perms[i];
            let slot = loop {
                let c = ((offset + next[i] * skip) % m) as usize;
                next[i] += 1;
                if !filled[c] {
                    break c;
                }
            };
            filled[slot] = true;
            out[slot] = r.value;
            placed += 1;
            if placed == m {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: u32 = 65537;

    fn reals(weights: &[u32]) -> Vec<Entry> {
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| Entry {
                addr: format!("10.0.0.{}:80", i + 1).parse().unwrap(),
                weight: *w,
                value: i as u32 + 1,
            })
            .collect()
    }

    fn share(t: &[u32], value: u32) -> f64 {
        t.iter().filter(|v| **v == value).count() as f64 / t.len() as f64
    }

    #[test]
    fn slots_follow_the_weights() {
        let t = table(&reals(&[1, 1, 2]), SIZE);
        assert!(t.iter().all(|v| *v != 0));
        for (value, want) in [(1, 0.25), (2, 0.25), (3, 0.5)] {
            let got = share(&t, value);
            assert!((got - want).abs() < 0.005, "real {value}: {got}");
        }
    }

    #[test]
    fn every_host_builds_the_same_table_whatever_the_order() {
        let a = reals(&[3, 1, 2]);
        let mut b = a.clone();
        b.reverse();
        assert_eq!(table(&a, SIZE), table(&b, SIZE));
    }

    /// Maglev's point: removing one real moves its slots and few others.
    #[test]
    fn a_real_leaving_moves_few_other_slots() {
        let before = table(&reals(&[1, 1, 1, 1, 1]), SIZE);
        let mut five = reals(&[1, 1, 1, 1, 1]);
        five[2].weight = 0;
        let after = table(&five, SIZE);
        assert!(after.iter().all(|v| *v != 3));
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != 3 && a != b)
            .count();
        assert!(
            (moved as f64) < 0.03 * f64::from(SIZE),
            "{moved} slots of the remaining reals moved"
        );
    }

    #[test]
    fn no_weight_no_real() {
        assert!(table(&reals(&[0, 0]), 7).iter().all(|v| *v == 0));
        assert!(table(&[], 7).iter().all(|v| *v == 0));
    }
}
