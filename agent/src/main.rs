//! The `xvrrp` command: run the daemon, check a config, show status.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use xvrrp::dataplane::AttachMode;

#[derive(Parser, Debug)]
#[command(
    name = "xvrrp",
    version,
    about = "eBPF-accelerated VRRP daemon that reads keepalived.conf"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run in the foreground (systemd does the daemonising).
    Run {
        /// Attach the XDP program to this interface and log the adverts it sees.
        #[arg(long, short = 'i')]
        interface: String,
        /// How to attach the XDP program.
        #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
        xdp_mode: AttachMode,
    },
    /// Check a keepalived.conf and print what it configures.
    Check {
        #[arg(
            short = 'c',
            long = "config",
            default_value = "/etc/keepalived/keepalived.conf"
        )]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// keepalived's config id (`-i`) for `@ID` conditional lines.
        #[arg(long, short = 'i')]
        config_id: Option<String>,
    },
    /// Show the running agent's instances.
    Status {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        metrics: bool,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            interface,
            xdp_mode,
        } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(xvrrp::daemon::run_monitor(&interface, xdp_mode))),
        Command::Check {
            config,
            json,
            config_id,
        } => return check(&config, json, config_id),
        Command::Status { .. } => Err(anyhow::anyhow!(
            "no agent to ask: `status` talks to a running `xvrrp run -c ...`, which arrives with the agent"
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xvrrp: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `xvrrp check`: exit 0 when the config loads (warnings allowed), 1 with
/// every error found.
fn check(path: &std::path::Path, json: bool, config_id: Option<String>) -> std::process::ExitCode {
    let opts = xvrrp::config::LoadOptions { config_id };
    let (cfg, diags) = xvrrp::config::load(path, &opts);
    let report = if json {
        xvrrp::config::check::json(cfg.as_ref(), &diags)
    } else {
        xvrrp::config::check::table(cfg.as_ref(), &diags)
    };
    println!("{}", report.trim_end());
    if diags.has_errors() {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
