//! The XDP object embedded at build time by agent/build.rs.

#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

/// Bytes of the advert fan-out's object (docs/design.md rule 3).
pub fn fanout_bytes() -> anyhow::Result<&'static [u8]> {
    static OBJECT: &Aligned<[u8]> =
        &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/xvrrp-fanout")));
    non_empty(&OBJECT.0)
}

/// Bytes of the BPF ELF object, 8-byte aligned as the ELF parser wants.
pub fn bytes() -> anyhow::Result<&'static [u8]> {
    static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/xvrrp")));
    non_empty(&OBJECT.0)
}

fn non_empty(object: &'static [u8]) -> anyhow::Result<&'static [u8]> {
    if object.is_empty() {
        anyhow::bail!(
            "this xvrrp binary was built with AYA_BUILD_SKIP=1 and carries no XDP program; \
             rebuild without it (`cargo xtask setup && cargo build -p xvrrp`)"
        );
    }
    Ok(object)
}
