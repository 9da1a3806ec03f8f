//! Small XDP programs of the test suite's own, assembled here and loaded
//! with bpf(2): the decapsulating real of the TUN tests (`decap`), and the
//! traffic generator, sink and stand-ins of the forwarding-rate bench.
//! Nothing here is part of xvrrp; they exist because this kernel has no
//! ipip module and no pktgen.

use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};

use anyhow::Context as _;

/// One BPF instruction (linux/bpf.h `struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    /// A conditional jump (JMP class, not JA, CALL or EXIT).
    pub fn is_cond_jump(&self) -> bool {
        self.code & 0x07 == 0x05 && !matches!(self.code & 0xf0, 0x00 | 0x80 | 0x90)
    }

    pub fn set_off(&mut self, off: i16) {
        self.off = off;
    }
}

pub const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
pub const MOV64_X: u8 = 0xbf;
pub const MOV64_K: u8 = 0xb7;
pub const ADD64_K: u8 = 0x07;
pub const AND64_K: u8 = 0x57;
pub const LDX_W: u8 = 0x61;
pub const LDX_H: u8 = 0x69;
pub const LDX_B: u8 = 0x71;
pub const LDX_DW: u8 = 0x79;
pub const STX_W: u8 = 0x63;
pub const STX_H: u8 = 0x6b;
pub const STX_DW: u8 = 0x7b;
pub const JGT_X: u8 = 0x2d;
pub const JNE_K: u8 = 0x55;
pub const CALL: u8 = 0x85;
pub const EXIT: u8 = 0x95;
pub const BPF_FUNC_GET_PRANDOM_U32: i32 = 7;
pub const BPF_FUNC_XDP_ADJUST_HEAD: i32 = 44;
pub const XDP_DROP: i32 = 1;
pub const XDP_PASS: i32 = 2;
pub const XDP_TX: i32 = 3;

/// bpf(2) with a zero-padded attr of 128 bytes.
fn bpf(cmd: i64, attr: &mut [u8; 128]) -> std::io::Result<i64> {
    // SAFETY: the attr outlives the call; pointers inside it are the
    // caller's and outlive it too.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len() as u32) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Loads an XDP program (BPF_PROG_LOAD), its verifier log on refusal.
pub fn load(name: &str, prog: &[Insn]) -> anyhow::Result<OwnedFd> {
    load_typed(name, 6, prog) // BPF_PROG_TYPE_XDP
}

/// Loads a program of `prog_type` (linux/bpf.h `enum bpf_prog_type`).
fn load_typed(name: &str, prog_type: u32, prog: &[Insn]) -> anyhow::Result<OwnedFd> {
    let license = c"GPL";
    let mut log = vec![0u8; 256 * 1024];
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&prog_type.to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(prog.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[24..28].copy_from_slice(&1u32.to_ne_bytes()); // log_level
    attr[28..32].copy_from_slice(&(log.len() as u32).to_ne_bytes());
    attr[32..40].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
    let n = name.len().min(15);
    attr[48..48 + n].copy_from_slice(&name.as_bytes()[..n]);
    match bpf(5, &mut attr) {
        // SAFETY: a new descriptor the kernel just returned.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(err) => {
            let text = String::from_utf8_lossy(&log);
            anyhow::bail!(
                "loading the BPF program {name}: {err}\n{}",
                text.trim_end_matches('\0')
            )
        }
    }
}

/// Attaches `prog` to `ifname` in `ns` in `mode`.
pub fn attach(
    ns: &crate::Netns,
    ifname: &str,
    prog: OwnedFd,
    mode: xvrrp::dataplane::AttachMode,
) -> anyhow::Result<()> {
    let ifname = ifname.to_owned();
    ns.run(move || {
        let index = xvrrp::net::iface::ifindex(&ifname)?;
        xvrrp::dataplane::netlink::attach(index, prog.as_fd(), mode)
            .with_context(|| format!("attaching an XDP program to {ifname}"))
    })
}

/// A program that returns `verdict` for every frame.
pub fn verdict(verdict: i32) -> [Insn; 2] {
    [insn(MOV64_K, 0, 0, 0, verdict), insn(EXIT, 0, 0, 0, 0)]
}

/// The traffic generator for `frame`, a UDP/IPv4 frame without IP options
/// (UDP checksum zero) or an ARP request: each run writes the frame's first
/// 42 bytes afresh (live frames are recycled pages: the forwarding under
/// test may have rewritten them in place), puts 2 random bytes at offset 34
/// (a UDP source port in 1024..2048; an ARP request's target MAC, which
/// nobody reads) and sends it back out (XDP_TX). Run in live-frames mode
/// (`send_live`) it is the kernel's own packet generator: 1,024 flows, no
/// copy to or from user space.
pub fn trafficgen(frame: &[u8]) -> anyhow::Result<Vec<Insn>> {
    const ST_W: u8 = 0x62;
    const ST_H: u8 = 0x6a;
    anyhow::ensure!(
        frame.len() >= 42,
        "the generator rewrites 42 bytes of headers"
    );
    let mut prog = vec![
        insn(MOV64_X, 6, 1, 0, 0),  // r6 = ctx
        insn(LDX_W, 7, 6, 0, 0),    // r7 = data
        insn(LDX_W, 3, 6, 4, 0),    // r3 = data_end
        insn(MOV64_X, 4, 7, 0, 0),  // r4 = data
        insn(ADD64_K, 4, 0, 0, 42), // r4 += 14 + 20 + 8
    ];
    let mut body = Vec::new();
    for at in (0..40).step_by(4) {
        let word = u32::from_ne_bytes(frame[at..at + 4].try_into().expect("4 bytes"));
        body.push(insn(ST_W, 7, 0, at as i16, word as i32));
    }
    let half = u16::from_ne_bytes(frame[40..42].try_into().expect("2 bytes"));
    body.push(insn(ST_H, 7, 0, 40, i32::from(half)));
    body.extend([
        insn(CALL, 0, 0, 0, BPF_FUNC_GET_PRANDOM_U32),
        insn(AND64_K, 0, 0, 0, 0x3ff),
        insn(ADD64_K, 0, 0, 0, 1024),
        insn(STX_H, 7, 0, 34, 0), // UDP source port (host order: any 1,024 values do)
        insn(MOV64_K, 0, 0, 0, XDP_TX),
        insn(EXIT, 0, 0, 0, 0),
    ]);
    // if r4 > data_end: pass (past the body)
    prog.push(insn(JGT_X, 4, 3, body.len() as i16, 0));
    prog.extend(body);
    prog.extend(verdict(XDP_PASS));
    Ok(prog)
}

/// Sends `frame` `count` times out of interface `ifindex` of the calling
/// thread's namespace: BPF_PROG_TEST_RUN of `prog` in live-frames mode
/// (the program's XDP_TX transmits each run's frame). The kernel's time
/// for the whole run.
pub fn send_live(
    prog: BorrowedFd<'_>,
    ifindex: u32,
    frame: &[u8],
    count: u32,
) -> anyhow::Result<std::time::Duration> {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex,
    // rx_queue_index, egress_ifindex.
    let mut ctx = [0u32; 6];
    ctx[1] = frame.len() as u32;
    ctx[3] = ifindex;
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
    attr[16..24].copy_from_slice(&(frame.as_ptr() as u64).to_ne_bytes());
    attr[32..36].copy_from_slice(&count.to_ne_bytes());
    attr[40..44].copy_from_slice(&(std::mem::size_of_val(&ctx) as u32).to_ne_bytes());
    attr[48..56].copy_from_slice(&(ctx.as_ptr() as u64).to_ne_bytes());
    attr[64..68].copy_from_slice(&2u32.to_ne_bytes()); // BPF_F_TEST_XDP_LIVE_FRAMES
    bpf(10, &mut attr).context("BPF_PROG_TEST_RUN in live-frames mode")?;
    let ns = u32::from_ne_bytes(attr[36..40].try_into().expect("4 bytes"));
    Ok(std::time::Duration::from_nanos(u64::from(ns)))
}

/// The mark (SO_MARK) that has `fanout` fan a frame out: any other frame
/// passes as it is.
pub const FANOUT_MARK: u32 = 0x7872_7270;

/// A tc program that fans one frame out into `count` frames on egress:
/// a frame whose mark is `mark` (the sender's SO_MARK) has the mark
/// cleared, then `count - 1` times is cloned out of `ifindex`
/// (bpf_clone_redirect) and gets the byte at `at` set to the next number,
/// before leaving itself: a frame sent with 1 there leaves as 1, 2, ...,
/// `count`. Nothing else changes (a VRRP checksum goes stale). The kernel
/// builds the frames: one send hands it `count`.
pub fn fanout(mark: u32, ifindex: u32, at: i32, count: i32) -> Vec<Insn> {
    const STX_B: u8 = 0x73;
    const JLE_K: u8 = 0xb5;
    const BPF_FUNC_SKB_STORE_BYTES: i32 = 9;
    const BPF_FUNC_CLONE_REDIRECT: i32 = 13;
    let mut prog = vec![
        insn(MOV64_X, 6, 1, 0, 0),         // r6 = skb
        insn(LDX_W, 2, 6, 8, 0),           // r2 = skb->mark
        insn(JNE_K, 2, 0, 0, mark as i32), // not ours: pass (offset set below)
        insn(MOV64_K, 2, 0, 0, 0),
        insn(STX_W, 6, 2, 8, 0),   // skb->mark = 0: the clones pass
        insn(MOV64_K, 7, 0, 0, 2), // r7 = 2: the number after the frame's
    ];
    let top = prog.len();
    prog.extend([
        insn(MOV64_X, 1, 6, 0, 0),
        insn(MOV64_K, 2, 0, 0, ifindex as i32),
        insn(MOV64_K, 3, 0, 0, 0), // egress
        insn(CALL, 0, 0, 0, BPF_FUNC_CLONE_REDIRECT),
        insn(STX_B, 10, 7, -8, 0), // fp[-8] = r7
        insn(MOV64_X, 1, 6, 0, 0),
        insn(MOV64_K, 2, 0, 0, at),
        insn(MOV64_X, 3, 10, 0, 0),
        insn(ADD64_K, 3, 0, 0, -8),
        insn(MOV64_K, 4, 0, 0, 1),
        insn(MOV64_K, 5, 0, 0, 0),
        insn(CALL, 0, 0, 0, BPF_FUNC_SKB_STORE_BYTES),
        insn(ADD64_K, 7, 0, 0, 1),
    ]);
    let back = top as i16 - prog.len() as i16 - 1;
    prog.push(insn(JLE_K, 7, 0, back, count));
    let pass = prog.len() as i16;
    prog[2].set_off(pass - 3);
    prog.extend(verdict(0)); // TC_ACT_OK
    prog
}

/// Loads `prog` as a tc program (BPF_PROG_TYPE_SCHED_CLS) and attaches it
/// to the egress of interface `ifindex` of the calling thread's namespace
/// (a tcx link, BPF_LINK_CREATE): attached while the link lives.
pub fn tcx_egress(name: &str, prog: &[Insn], ifindex: u32) -> anyhow::Result<OwnedFd> {
    let prog = load_typed(name, 3, prog)?;
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    attr[8..12].copy_from_slice(&47u32.to_ne_bytes()); // BPF_TCX_EGRESS
    let fd = bpf(28, &mut attr).context("BPF_LINK_CREATE (tcx egress)")?;
    // SAFETY: a new descriptor the kernel just returned.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
