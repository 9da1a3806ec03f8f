//! `cargo xtask`: set up a machine, build, run, demo and test xvrrp.

mod bench;
mod cmd;
mod deb;
mod fuzz;
mod lab;
mod setup;
mod test;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "xvrrp developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the build and tests need (idempotent): Debian packages,
    /// rust-src for nightly, bpf-linker 0.13 against nightly's LLVM; check the kernel.
    Setup,
    /// Build the agent with the XDP program embedded.
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build and run the agent as root (sudo when not root): `cargo xtask run -- ARGS`.
    Run {
        #[arg(long)]
        release: bool,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The live demo in network namespaces (see README).
    Lab,
    /// The Debian package (target/debian/xvrrp_VERSION_ARCH.deb): binary,
    /// systemd unit, man pages, completions; debug info beside it.
    Deb,
    /// Run every cargo-fuzz target (agent/fuzz) for a while.
    Fuzz {
        #[arg(long, default_value_t = 60)]
        seconds: u32,
    },
    /// xvrrp against keepalived in namespaces: docs/bench/RESULTS.md, SVG plots,
    /// one line per figure (`-- --runs N --only 1,3 --out DIR`).
    Bench {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// fmt, clippy -D warnings, unit tests, the privileged integration tests, a fuzz smoke run.
    Test {
        /// Only tests whose name contains this (passed to cargo test).
        filter: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::main(),
        Task::Build { release } => cmd::build_agent(release).map(|_| ()),
        Task::Run { release, args } => cmd::run_agent(release, &args),
        Task::Lab => lab::main(),
        Task::Deb => deb::main(),
        Task::Fuzz { seconds } => fuzz::main(seconds),
        Task::Test { filter } => test::main(filter.as_deref()),
        Task::Bench { args } => bench::main(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
