//! A decapsulating real server for the `lb_kind TUN` tests. This kernel has
//! no ipip module, so the reals strip the outer IPv4 header of IPIP frames
//! with an XDP program of the tests' own: 21 BPF instructions assembled
//! here (crate::xdpasm) and attached in generic mode.

use crate::xdpasm::{
    insn, Insn, ADD64_K, BPF_FUNC_XDP_ADJUST_HEAD, CALL, EXIT, JGT_X, JNE_K, LDX_B, LDX_DW, LDX_H,
    LDX_W, MOV64_K, MOV64_X, STX_DW, STX_H, STX_W, XDP_PASS,
};

/// If the frame is IPv4 carrying IPIP (protocol 4), move the Ethernet
/// header 20 bytes on, over the outer IPv4 header, and start the frame
/// there; every frame passes.
const PROGRAM: [Insn; 21] = [
    insn(MOV64_X, 6, 1, 0, 0),     // r6 = ctx
    insn(LDX_W, 2, 6, 0, 0),       // r2 = data
    insn(LDX_W, 3, 6, 4, 0),       // r3 = data_end
    insn(MOV64_X, 4, 2, 0, 0),     // r4 = data
    insn(ADD64_K, 4, 0, 0, 34),    // r4 += 14 + 20
    insn(JGT_X, 4, 3, 13, 0),      // if r4 > data_end: pass
    insn(LDX_H, 5, 2, 12, 0),      // r5 = ethertype
    insn(JNE_K, 5, 0, 11, 0x0008), // not IPv4 (0x0800, read little-endian): pass
    insn(LDX_B, 5, 2, 23, 0),      // r5 = IPv4 protocol
    insn(JNE_K, 5, 0, 9, 4),       // not IPIP: pass
    insn(LDX_DW, 5, 2, 0, 0),      // the MACs and ethertype, to 20..34
    insn(STX_DW, 2, 5, 20, 0),
    insn(LDX_W, 5, 2, 8, 0),
    insn(STX_W, 2, 5, 28, 0),
    insn(LDX_H, 5, 2, 12, 0),
    insn(STX_H, 2, 5, 32, 0),
    insn(MOV64_X, 1, 6, 0, 0), // bpf_xdp_adjust_head(ctx, 20)
    insn(MOV64_K, 2, 0, 0, 20),
    insn(CALL, 0, 0, 0, BPF_FUNC_XDP_ADJUST_HEAD),
    insn(MOV64_K, 0, 0, 0, XDP_PASS), // pass: (instruction 19)
    insn(EXIT, 0, 0, 0, 0),
];

/// Attaches the decapsulating program to `ifname` in `ns` (generic XDP).
pub fn attach(ns: &crate::Netns, ifname: &str) -> anyhow::Result<()> {
    let prog = crate::xdpasm::load("decap", &PROGRAM)?;
    crate::xdpasm::attach(ns, ifname, prog, xvrrp::dataplane::AttachMode::Skb)
}
