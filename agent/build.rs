//! Compiles the XDP program (ebpf/xvrrp-ebpf) with nightly through aya-build,
//! so that the agent binary embeds it (`include_bytes!` in dataplane/object.rs).
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../ebpf/xvrrp-ebpf");
    let root = root.to_str().expect("UTF-8 path").to_owned();
    let package = aya_build::Package {
        name: "xvrrp-ebpf",
        root_dir: &root,
        ..Default::default()
    };
    // The workspace's release profile is the agent's (LTO, stripped, split
    // debug info). The XDP program needs its own: LTO across the program's
    // functions blows the 512-byte BPF stack, and its BTF comes from the
    // debug info. The nested cargo aya-build runs inherits these.
    for (key, value) in [
        ("CARGO_PROFILE_RELEASE_LTO", "false"),
        ("CARGO_PROFILE_RELEASE_STRIP", "none"),
        ("CARGO_PROFILE_RELEASE_SPLIT_DEBUGINFO", "off"),
    ] {
        // SAFETY: the build script is single-threaded here.
        unsafe { env::set_var(key, value) };
    }
    aya_build::build_ebpf([package], aya_build::Toolchain::default())?;
    // With AYA_BUILD_SKIP=1 nothing is built: leave an empty object so the host
    // code compiles; loading it then fails with an explanation (object.rs).
    // Both objects: the XDP program and the advert fan-out (tc).
    for name in ["xvrrp", "xvrrp-fanout"] {
        let object = PathBuf::from(env::var("OUT_DIR")?).join(name);
        if !object.exists() {
            fs::write(&object, [])?;
        } else if fs::metadata(&object)?.len() > 0 {
            strip_dwarf(&object);
        }
    }
    Ok(())
}

/// Drops the object's DWARF (about 700 KB of the 900) and keeps its BTF,
/// which the kernel needs for the bpf_timer map and the callbacks' func
/// info. nightly's own objcopy (LLVM 22, the linker's) does it; it needs
/// its sysroot's libLLVM on the library path. Without it the object stays
/// whole and larger, with a warning.
fn strip_dwarf(object: &Path) {
    let sysroot = Command::new("rustc")
        .args(["+nightly", "--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else {
        println!("cargo:warning=no nightly sysroot: the XDP object keeps its DWARF");
        return;
    };
    let host = env::var("HOST").unwrap_or_else(|_| "x86_64-unknown-linux-gnu".into());
    let objcopy = sysroot
        .join("lib/rustlib")
        .join(host)
        .join("bin/rust-objcopy");
    let status = Command::new(&objcopy)
        .env("LD_LIBRARY_PATH", sysroot.join("lib"))
        .arg("--strip-debug")
        .arg(object)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        println!(
            "cargo:warning={} --strip-debug failed ({status:?}): the XDP object keeps its DWARF",
            objcopy.display()
        );
    }
}
