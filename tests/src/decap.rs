//! A decapsulating real server for the `lb_kind TUN` tests. This kernel has
//! no ipip, gre or fou module, so the reals strip the outer headers of
//! tunnel frames with an XDP program of the tests' own, assembled here
//! (crate::xdpasm) and attached in generic mode.

use crate::xdpasm::{
    insn, Insn, ADD64_K, BPF_FUNC_XDP_ADJUST_HEAD, CALL, JGT_X, JNE_K, LDX_B, LDX_DW, LDX_H, LDX_W,
    MOV64_K, MOV64_X, STX_DW, STX_H, STX_W, XDP_PASS,
};

/// The tunnel a real takes packets from (`lb_kind TUN type …`).
#[derive(Clone, Copy, Debug)]
pub enum Tunnel {
    /// IPv4 / the packet.
    Ipip,
    /// IPv4 / GRE (4 bytes) / the packet.
    Gre,
    /// IPv4 / UDP to this port / GUE (4 bytes) / the packet.
    Gue(u16),
}

impl Tunnel {
    /// (outer IPv4 protocol, bytes between the Ethernet header and the
    /// inner packet).
    fn outer(self) -> (i32, i32) {
        match self {
            Tunnel::Ipip => (4, 20),
            Tunnel::Gre => (47, 24),
            Tunnel::Gue(_) => (17, 32),
        }
    }
}

/// If the frame is IPv4 carrying `tunnel` (the outer protocol, and for GUE
/// the UDP destination port), move the Ethernet header on over the outer
/// headers and start the frame there; every frame passes.
fn program(tunnel: Tunnel) -> Vec<Insn> {
    let (proto, strip) = tunnel.outer();
    let mut checks = vec![
        insn(LDX_H, 5, 2, 12, 0),     // r5 = ethertype
        insn(JNE_K, 5, 0, 0, 0x0008), // not IPv4 (0x0800, read little-endian): pass
        insn(LDX_B, 5, 2, 23, 0),     // r5 = IPv4 protocol
        insn(JNE_K, 5, 0, 0, proto),  // not the tunnel's: pass
    ];
    if let Tunnel::Gue(port) = tunnel {
        checks.push(insn(LDX_H, 5, 2, 36, 0)); // r5 = UDP destination port
        checks.push(insn(JNE_K, 5, 0, 0, i32::from(port.swap_bytes())));
    }
    let strip16 = strip as i16;
    let body = [
        insn(LDX_DW, 5, 2, 0, 0), // the MACs and ethertype, to strip..strip + 14
        insn(STX_DW, 2, 5, strip16, 0),
        insn(LDX_W, 5, 2, 8, 0),
        insn(STX_W, 2, 5, strip16 + 8, 0),
        insn(LDX_H, 5, 2, 12, 0),
        insn(STX_H, 2, 5, strip16 + 12, 0),
        insn(MOV64_X, 1, 6, 0, 0), // bpf_xdp_adjust_head(ctx, strip)
        insn(MOV64_K, 2, 0, 0, strip),
        insn(CALL, 0, 0, 0, BPF_FUNC_XDP_ADJUST_HEAD),
    ];
    let mut prog = vec![
        insn(MOV64_X, 6, 1, 0, 0),          // r6 = ctx
        insn(LDX_W, 2, 6, 0, 0),            // r2 = data
        insn(LDX_W, 3, 6, 4, 0),            // r3 = data_end
        insn(MOV64_X, 4, 2, 0, 0),          // r4 = data
        insn(ADD64_K, 4, 0, 0, 14 + strip), // r4 += the headers
        insn(JGT_X, 4, 3, 0, 0),            // if r4 > data_end: pass
    ];
    prog.extend(checks);
    prog.extend(body);
    // Every conditional jump so far goes to `pass`, the instruction after.
    let pass = prog.len();
    for (i, ins) in prog.iter_mut().enumerate() {
        if ins.is_cond_jump() {
            ins.set_off((pass - i - 1) as i16);
        }
    }
    prog.extend(crate::xdpasm::verdict(XDP_PASS));
    prog
}

/// Attaches the program decapsulating `tunnel` to `ifname` in `ns`
/// (generic XDP).
pub fn attach(ns: &crate::Netns, ifname: &str, tunnel: Tunnel) -> anyhow::Result<()> {
    let prog = crate::xdpasm::load("decap", &program(tunnel))?;
    crate::xdpasm::attach(ns, ifname, prog, xvrrp::dataplane::AttachMode::Skb)
}
