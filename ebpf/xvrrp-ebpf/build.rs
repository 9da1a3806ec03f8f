//! Rebuild the XDP program when bpf-linker changes (aya-template's habit).
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
