//! A decapsulating real server for the `lb_kind TUN` tests. This kernel has
//! no ipip module, so the reals strip the outer IPv4 header of IPIP frames
//! with an XDP program of the tests' own: 21 BPF instructions assembled
//! here and loaded with bpf(2), attached in generic mode.

use std::os::fd::{AsFd as _, FromRawFd as _, OwnedFd};

use anyhow::Context as _;

/// One BPF instruction (linux/bpf.h `struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const ADD64_K: u8 = 0x07;
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const LDX_DW: u8 = 0x79;
const STX_W: u8 = 0x63;
const STX_H: u8 = 0x6b;
const STX_DW: u8 = 0x7b;
const JGT_X: u8 = 0x2d;
const JNE_K: u8 = 0x55;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const BPF_FUNC_XDP_ADJUST_HEAD: i32 = 44;
const XDP_PASS: i32 = 2;

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

/// Loads the program (BPF_PROG_LOAD), its verifier log on refusal.
fn load() -> anyhow::Result<OwnedFd> {
    let prog = PROGRAM;
    let license = c"GPL";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&6u32.to_ne_bytes()); // BPF_PROG_TYPE_XDP
    attr[4..8].copy_from_slice(&(prog.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(prog.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[24..28].copy_from_slice(&1u32.to_ne_bytes()); // log_level
    attr[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
    attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
    attr[48..54].copy_from_slice(b"decap\0");
    // SAFETY: bpf(BPF_PROG_LOAD) with a zero-padded attr; the pointers
    // outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            5, // BPF_PROG_LOAD
            attr.as_ptr(),
            attr.len() as u32,
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        let text = String::from_utf8_lossy(&log);
        anyhow::bail!(
            "loading the decapsulating program: {err}\n{}",
            text.trim_end_matches('\0')
        );
    }
    // SAFETY: a new descriptor the kernel just returned.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the decapsulating program to `ifname` in `ns` (generic XDP).
pub fn attach(ns: &crate::Netns, ifname: &str) -> anyhow::Result<()> {
    let fd = load()?;
    let ifname = ifname.to_owned();
    ns.run(move || {
        let index = xvrrp::net::iface::ifindex(&ifname)?;
        xvrrp::dataplane::netlink::attach(index, fd.as_fd(), xvrrp::dataplane::AttachMode::Skb)
            .with_context(|| format!("attaching the decapsulating program to {ifname}"))
    })
}
