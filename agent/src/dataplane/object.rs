//! The XDP object embedded at build time by agent/build.rs.

/// Bytes of the BPF ELF object, 8-byte aligned as the ELF parser wants.
pub fn bytes() -> anyhow::Result<&'static [u8]> {
    #[repr(C, align(8))]
    struct Aligned<T: ?Sized>(T);
    static OBJECT: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/xvrrp")));
    if OBJECT.0.is_empty() {
        anyhow::bail!(
            "this xvrrp binary was built with AYA_BUILD_SKIP=1 and carries no XDP program; \
             rebuild without it (`cargo xtask setup && cargo build -p xvrrp`)"
        );
    }
    Ok(&OBJECT.0)
}
