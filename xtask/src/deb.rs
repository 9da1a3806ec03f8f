//! `cargo xtask deb`: the Debian package, built with dpkg-deb from a staged
//! tree (no cargo-deb: the tree is a dozen files and the maintainer scripts
//! are ours). The binary, the systemd unit, man pages and shell completions
//! generated from the clap definitions (`xvrrp assets`), the docs; the
//! split debug info (xvrrp.dwp) goes beside the .deb.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;

use crate::cmd::{self, output, run};

pub fn main() -> anyhow::Result<()> {
    build().map(|deb| eprintln!("xtask: {}", deb.display()))
}

/// Builds the package; its path.
pub fn build() -> anyhow::Result<PathBuf> {
    let bin = cmd::build_agent(true)?;
    let root = cmd::root();
    let version = output(Command::new(&bin).arg("--version"))
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .context("xvrrp --version")?;
    let arch = output(Command::new("dpkg").arg("--print-architecture"))
        .map(|a| a.trim().to_owned())
        .context("dpkg --print-architecture (Debian's dpkg is needed)")?;
    let name = format!("xvrrp_{version}_{arch}");
    let out = root.join("target/debian");
    let stage = out.join(&name);
    if stage.exists() {
        fs::remove_dir_all(&stage)?;
    }
    fs::create_dir_all(stage.join("DEBIAN"))?;

    install(&bin, &stage.join("usr/sbin/xvrrp"), 0o755)?;
    install(
        &root.join("packaging/xvrrp.service"),
        &stage.join("lib/systemd/system/xvrrp.service"),
        0o644,
    )?;
    let assets = out.join("assets");
    if assets.exists() {
        fs::remove_dir_all(&assets)?;
    }
    run(Command::new(&bin).arg("assets").arg(&assets))?;
    let man8 = stage.join("usr/share/man/man8");
    fs::create_dir_all(&man8)?;
    for page in fs::read_dir(assets.join("man"))? {
        let page = page?.path();
        let gz = man8.join(format!(
            "{}.gz",
            page.file_name().unwrap_or_default().to_string_lossy()
        ));
        let zipped = Command::new("gzip")
            .args(["-9n", "-c"])
            .arg(&page)
            .output()?;
        anyhow::ensure!(zipped.status.success(), "gzip {}", page.display());
        fs::write(&gz, zipped.stdout)?;
        fs::set_permissions(&gz, fs::Permissions::from_mode(0o644))?;
    }
    let completions = assets.join("completions");
    for (from, to) in [
        ("xvrrp.bash", "usr/share/bash-completion/completions/xvrrp"),
        ("_xvrrp", "usr/share/zsh/vendor-completions/_xvrrp"),
        (
            "xvrrp.fish",
            "usr/share/fish/vendor_completions.d/xvrrp.fish",
        ),
    ] {
        install(&completions.join(from), &stage.join(to), 0o644)?;
    }
    let doc = stage.join("usr/share/doc/xvrrp");
    install(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    fs::write(
        doc.join("copyright"),
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: xvrrp\n\n\
         Files: *\n\
         Copyright: the xvrrp developers\n\
         License: MIT or Apache-2.0\n",
    )?;

    let installed_kb = du_kb(&stage)?;
    fs::write(
        stage.join("DEBIAN/control"),
        format!(
            "Package: xvrrp\n\
             Version: {version}\n\
             Architecture: {arch}\n\
             Maintainer: xvrrp developers <xvrrp@localhost>\n\
             Installed-Size: {installed_kb}\n\
             Depends: libc6 (>= 2.34)\n\
             Suggests: keepalived\n\
             Section: net\n\
             Priority: optional\n\
             Description: VRRP failover for keepalived.conf, with an XDP fast path\n \
             xvrrp reads keepalived.conf and runs its vrrp_instance blocks: the\n \
             virtual IP moves in tens of milliseconds, ARP/ND for it is answered\n \
             in XDP, and a killed agent's host falls silent. The package does\n \
             not start it beside a running keepalived.\n"
        ),
    )?;
    let common = fs::read_to_string(root.join("packaging/debian/common.sh"))?;
    for script in ["postinst", "prerm", "postrm"] {
        let body = fs::read_to_string(root.join("packaging/debian").join(script))?;
        let path = stage.join("DEBIAN").join(script);
        fs::write(&path, format!("#!/bin/sh\n{common}\n{body}"))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    let deb = out.join(format!("{name}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zxz", "--build"])
        .arg(&stage)
        .arg(&deb))?;
    let dwp = bin.with_extension("dwp");
    if dwp.exists() {
        fs::copy(&dwp, out.join(format!("{name}.dwp")))?;
    }
    eprintln!(
        "xtask: {} ({:.1} MB; debug info beside it in {name}.dwp)",
        deb.display(),
        fs::metadata(&deb)?.len() as f64 / 1e6
    );
    Ok(deb)
}

fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    fs::create_dir_all(to.parent().expect("a file in a directory"))?;
    fs::copy(from, to).with_context(|| format!("{} -> {}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// The staged tree's size in KiB (DEBIAN/ excluded), for Installed-Size.
fn du_kb(stage: &Path) -> anyhow::Result<u64> {
    fn walk(dir: &Path, total: &mut u64) -> std::io::Result<()> {
        for e in fs::read_dir(dir)? {
            let e = e?;
            if e.file_name() == "DEBIAN" {
                continue;
            }
            let meta = e.metadata()?;
            if meta.is_dir() {
                walk(&e.path(), total)?;
            } else {
                *total += meta.len().div_ceil(1024);
            }
        }
        Ok(())
    }
    let mut total = 0;
    walk(stage, &mut total)?;
    Ok(total)
}
