//! `cargo xtask setup`: everything a fresh Debian machine needs, idempotently.
//! A second run only checks (a few seconds).

use std::{fs, path::PathBuf, process::Command};

use anyhow::{bail, Context as _};

use crate::cmd::{self, output, run};

/// Debian packages: the build (clang is not needed: bpf-linker uses nightly's
/// LLVM), the tests and the lab.
const PACKAGES: &[&str] = &[
    "iproute2",
    "keepalived",
    "tcpdump",
    "arping",
    "iputils-ping",
    "bpftool",
    "procps",
    // The package test reads the generated man page with `man -l`.
    "man-db",
    // The SMTP server the smtp_alert test sends to.
    "python3-aiosmtpd",
    // virtual_server NAT: the agent drives the kernel's nftables through
    // `nft -j` (JSON), and the tests read the table back with it.
    "nftables",
    // The SSL_GET test's certificate (`openssl req -x509`).
    "openssl",
];

const BPF_LINKER_VERSION: &str = "0.13";

pub fn main() -> anyhow::Result<()> {
    debian_packages()?;
    nightly_rust_src()?;
    bpf_linker()?;
    cargo_fuzz()?;
    kernel()?;
    eprintln!("setup: ok");
    Ok(())
}

fn installed(pkg: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", pkg]))
        .is_some_and(|s| s.contains("install ok installed"))
}

fn debian_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("setup: Debian packages present ({})", PACKAGES.join(" "));
        return Ok(());
    }
    if !cmd::is_root() {
        bail!(
            "missing Debian packages: {}; run `sudo cargo xtask setup` or `sudo apt-get install {}`",
            missing.join(" "),
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing))?;
    // The packaged keepalived must not run on its own: the tests start their own.
    let _ = Command::new("systemctl")
        .args(["disable", "--now", "keepalived"])
        .output();
    Ok(())
}

fn nightly_rust_src() -> anyhow::Result<()> {
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))
        .context(
            "the XDP program needs a nightly toolchain (`rustup toolchain install nightly`)",
        )?;
    }
    let comps = output(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        "nightly",
        "--installed",
    ]))
    .unwrap_or_default();
    if comps.lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("setup: nightly has rust-src");
        return Ok(());
    }
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
}

/// bpf-linker must link against the same LLVM as nightly's rustc: build it
/// against the toolchain's own libLLVM through an LLVM_PREFIX of symlinks.
fn bpf_linker() -> anyhow::Result<()> {
    let sysroot = output(Command::new("rustc").args(["+nightly", "--print", "sysroot"]))
        .context("rustc +nightly --print sysroot failed")?;
    let libdir = PathBuf::from(sysroot.trim()).join("lib");
    let libllvm = fs::read_dir(&libdir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so.") && n.contains("-rust-"))
        .with_context(|| format!("no libLLVM.so.*-rust-* in {}", libdir.display()))?;
    // libLLVM.so.22.1-rust-1.97.0-nightly -> 22
    let major = libllvm
        .trim_start_matches("libLLVM.so.")
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned();
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo")
        });
    let prefix = home.join("xvrrp-llvm");
    let stamp_path = prefix.join("stamp");
    let stamp = format!("bpf-linker {BPF_LINKER_VERSION} {libllvm}\n");
    let linker_ok =
        output(Command::new("rustup").args(["run", "nightly", "bpf-linker", "--version"]))
            .is_some_and(|v| v.contains(&format!("bpf-linker {BPF_LINKER_VERSION}")));
    if linker_ok && fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        eprintln!("setup: bpf-linker {BPF_LINKER_VERSION} built against {libllvm}");
        return Ok(());
    }
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib)?;
    for name in ["libLLVM.so".to_owned(), libllvm.clone()] {
        let link = lib.join(&name);
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(libdir.join(&libllvm), &link)
            .with_context(|| format!("symlinking {}", link.display()))?;
    }
    run(Command::new("cargo")
        .env("LLVM_PREFIX", &prefix)
        .args(["+nightly", "install", "--force", "--locked", "bpf-linker"])
        .args(["--version", &format!("^{BPF_LINKER_VERSION}")])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{major}"),
        ]))
    .or_else(|_| {
        // --locked can fail when the published lockfile does not resolve here.
        run(Command::new("cargo")
            .env("LLVM_PREFIX", &prefix)
            .args(["+nightly", "install", "--force", "bpf-linker"])
            .args(["--version", &format!("^{BPF_LINKER_VERSION}")])
            .args([
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ]))
    })?;
    fs::write(&stamp_path, stamp)?;
    Ok(())
}

/// cargo-fuzz runs the parsers' fuzz targets (agent/fuzz) in `cargo xtask test`.
fn cargo_fuzz() -> anyhow::Result<()> {
    if output(Command::new("cargo").args(["fuzz", "--version"])).is_some() {
        eprintln!("setup: cargo-fuzz present");
        return Ok(());
    }
    run(Command::new("cargo").args(["install", "--locked", "cargo-fuzz"]))
}

fn kernel() -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut nums = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (maj, min) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if (maj, min) < (5, 9) {
        problems.push(format!(
            "kernel {} is older than 5.9: XDP through bpf_link needs 5.9 (upgrade the kernel)",
            release.trim()
        ));
    }
    if !PathBuf::from("/sys/kernel/btf/vmlinux").exists() {
        problems.push(
            "no BTF at /sys/kernel/btf/vmlinux: use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
                .into(),
        );
    }
    if let Err(err) = probe_bpf_syscall() {
        problems.push(format!(
            "the bpf() syscall failed ({err}): run as root or with CAP_BPF, and check kernel.unprivileged_bpf_disabled / seccomp"
        ));
    }
    if problems.is_empty() {
        eprintln!(
            "setup: kernel {} has bpf(), BTF and bpf_link XDP",
            release.trim()
        );
        Ok(())
    } else {
        bail!(
            "the kernel cannot run xvrrp:\n  - {}",
            problems.join("\n  - ")
        )
    }
}

/// Creates (and closes) a one-entry BPF array map: proves bpf() works here.
fn probe_bpf_syscall() -> std::io::Result<()> {
    #[repr(C)]
    #[derive(Default)]
    struct MapCreate {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
    }
    let attr = MapCreate {
        map_type: 2, // BPF_MAP_TYPE_ARRAY
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        ..Default::default()
    };
    // SAFETY: BPF_MAP_CREATE (0) with a valid attr of the given size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            0,
            &attr as *const MapCreate,
            std::mem::size_of::<MapCreate>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us.
    unsafe { libc::close(fd as i32) };
    Ok(())
}
