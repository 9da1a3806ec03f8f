//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers.

use std::net::{Ipv4Addr, Ipv6Addr};

/// One's-complement sum of 16-bit big-endian words (odd byte padded with 0),
/// not yet folded.
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        acc = acc.wrapping_add(u16::from_be_bytes([pair[0], pair[1]]) as u32);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add((*last as u32) << 8);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// Folds a sum to 16 bits and complements it: the value to put in the field.
pub fn finish(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Adds two partial sums.
pub fn combine(a: u32, b: u32) -> u32 {
    let s = a as u64 + b as u64;
    ((s & 0xffff) + (s >> 16)) as u32
}

/// RFC 768 / RFC 793 IPv4 pseudo-header: src, dst, zero, protocol, length.
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let mut bytes = [0u8; 12];
    bytes[0..4].copy_from_slice(&src.octets());
    bytes[4..8].copy_from_slice(&dst.octets());
    bytes[9] = protocol;
    bytes[10..12].copy_from_slice(&length.to_be_bytes());
    sum(&bytes)
}

/// RFC 8200 §8.1 IPv6 pseudo-header: src, dst, upper-layer length, next header.
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u32 {
    let mut bytes = [0u8; 40];
    bytes[0..16].copy_from_slice(&src.octets());
    bytes[16..32].copy_from_slice(&dst.octets());
    bytes[32..36].copy_from_slice(&length.to_be_bytes());
    bytes[39] = next_header;
    sum(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(&data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn a_filled_checksum_verifies_to_zero() {
        let mut data = vec![0x45, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0, 0, 0xff, 112, 0, 0];
        let c = finish(sum(&data));
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(finish(sum(&data)), 0);
    }
}
