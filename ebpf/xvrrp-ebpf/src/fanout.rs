//! The advert fan-out (docs/design.md rule 3): a tc program on an
//! interface's egress. The agent sends the first advert of a round through
//! its raw IPv4 socket — so netfilter's OUTPUT and POSTROUTING hooks see a
//! real advert — with the round's nonce as IPv4 identification; this
//! program sends that frame, then rewrites it with each further advert of
//! the round (`FANOUT_FRAMES`, as listed in `FANOUT_ROUND`) and sends it
//! again (bpf_clone_redirect to the same interface's egress). One system
//! call hands the kernel a round of adverts, each its own frame through
//! the interface's queue. Any other frame passes untouched.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod prog {
    use aya_ebpf::{
        bindings::TC_ACT_OK,
        helpers::{bpf_skb_change_tail, bpf_skb_store_bytes},
        macros::{classifier, map},
        maps::{Array, PerCpuArray},
        programs::TcContext,
    };
    use xvrrp_common::{
        fanout_counter, FanoutFrame, FanoutRound, FANOUT_FRAMES, FANOUT_FRAME_MAX, FANOUT_ROUND_MAX,
    };

    /// Memory-mapped by the agent (BPF_F_MMAPABLE): arming a round is a
    /// store, not a system call.
    #[map(name = "FANOUT_ROUND")]
    static ROUND: Array<FanoutRound> = Array::with_max_entries(1, BPF_F_MMAPABLE);

    const BPF_F_MMAPABLE: u32 = 1 << 10;

    #[map(name = "FANOUT_FRAMES")]
    static FRAMES: Array<FanoutFrame> = Array::with_max_entries(FANOUT_FRAMES, 0);

    #[map(name = "FANOUT_COUNTERS")]
    static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(fanout_counter::COUNT, 0);

    const ETH_HLEN: usize = 14;
    const ETH_P_IP: u16 = 0x0800;
    const IPPROTO_VRRP: u8 = 112;
    /// An IPv4 header without options.
    const IPV4_HLEN: u32 = 20;

    /// Adds `n` to counter `index`. No branch on `n`: a branch would make
    /// the verifier track a round's counts exactly, every combination of
    /// the loop's outcomes a state of its own (the program then took
    /// seconds to load).
    fn count(index: u32, n: u64) {
        if let Some(c) = COUNTERS.get_ptr_mut(index) {
            // SAFETY: a per-CPU slot of this map.
            unsafe { *c += n };
        }
    }

    #[classifier]
    pub fn xvrrp_fanout(ctx: TcContext) -> i32 {
        fan_out(&ctx);
        TC_ACT_OK as i32
    }

    fn fan_out(ctx: &TcContext) {
        // An IPv4 VRRP frame on Ethernet whose identification arms a round.
        // Read in place (no helper call): every frame the interface sends
        // comes through here, each advert a round sends included.
        let (data, end) = (ctx.data(), ctx.data_end());
        if data + ETH_HLEN + IPV4_HLEN as usize > end {
            return;
        }
        // SAFETY: within [data, end), checked above.
        let (ethertype, protocol, id) = unsafe {
            (
                core::ptr::read_unaligned((data + 12) as *const u16),
                *((data + ETH_HLEN + 9) as *const u8),
                core::ptr::read_unaligned((data + ETH_HLEN + 4) as *const u16),
            )
        };
        if u16::from_be(ethertype) != ETH_P_IP || protocol != IPPROTO_VRRP {
            return;
        }
        let Some(round) = ROUND.get_ptr_mut(0) else {
            return;
        };
        // SAFETY: the map's only slot; the agent writes it only before it
        // sends a round's frame, and this program is the only other writer.
        let round = unsafe { &mut *round };
        let nonce = u32::from(u16::from_be(id));
        if round.nonce == 0 || round.nonce != nonce {
            return;
        }
        round.nonce = 0;
        let n = round.count as usize;
        // SAFETY: the context's own socket buffer.
        let skb = unsafe { (*ctx.skb.skb).ifindex };
        // Counted once a round, not per advert.
        let (mut clones, mut clone_failed, mut write_failed) = (0, 0, 0);
        let mut i = 1;
        while i < FANOUT_ROUND_MAX && i < n {
            // Send the frame as it is, then make it the next advert.
            if ctx.clone_redirect(skb, 0).is_err() {
                clone_failed += 1;
            } else {
                clones += 1;
            }
            if !write(ctx, round.frames[i]) {
                write_failed += 1;
            }
            i += 1;
        }
        count(fanout_counter::ROUNDS, 1);
        count(fanout_counter::CLONES, clones);
        count(fanout_counter::CLONE_FAILED, clone_failed);
        count(fanout_counter::WRITE_FAILED, write_failed);
    }

    /// Writes frame `index` over the IPv4 packet of `ctx` (resized to it).
    fn write(ctx: &TcContext, index: u16) -> bool {
        let Some(frame) = FRAMES.get(u32::from(index)) else {
            return false;
        };
        // Masked, not range-checked: the verifier must see the bound on
        // the very register the store helper gets (the agent keeps only
        // frames shorter than FANOUT_FRAME_MAX, a power of two).
        let len = frame.len & (FANOUT_FRAME_MAX as u32 - 1);
        if len < IPV4_HLEN {
            return false;
        }
        let want = ETH_HLEN as u32 + len;
        if ctx.len() != want {
            // SAFETY: the helper checks the new length itself.
            if unsafe { bpf_skb_change_tail(ctx.skb.skb, want, 0) } != 0 {
                return false;
            }
        }
        // SAFETY: `len` is within the frame's bytes (checked above).
        unsafe {
            bpf_skb_store_bytes(
                ctx.skb.skb.cast(),
                ETH_HLEN as u32,
                frame.bytes.as_ptr().cast(),
                len,
                0,
            ) == 0
        }
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
