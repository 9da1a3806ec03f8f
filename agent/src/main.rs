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

/// Which keepalived.conf, read how (shared by `run` and `check`).
#[derive(clap::Args, Debug)]
struct ConfigArgs {
    /// The config file (`-f`/`--use-file` as keepalived spells it also work).
    #[arg(
        short = 'c',
        long = "config",
        short_alias = 'f',
        alias = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    config: PathBuf,
    /// keepalived's config id (`-i`) for `@ID` conditional lines.
    #[arg(long, short = 'i')]
    config_id: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run in the foreground (systemd does the daemonising).
    Run {
        #[command(flatten)]
        config: ConfigArgs,
        /// Where the control socket and lock live (default: per network namespace under /run/xvrrp).
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
        /// Monitor mode: attach only the XDP program to this interface and log the adverts it sees.
        #[arg(long)]
        interface: Option<String>,
        /// How to attach the XDP program.
        #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
        xdp_mode: AttachMode,
        /// Start fresh: do not re-adopt the XDP program a previous run left
        /// attached (by default a restart re-adopts it and its maps, so
        /// instances that were Active stay so).
        #[arg(long)]
        clean: bool,
    },
    /// Check a keepalived.conf and print what it configures.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Refuse what keepalived only complains about (unknown keywords,
        /// vrrp_strict fix-ups): for CI checks of configs written for xvrrp.
        #[arg(long)]
        strict: bool,
    },
    /// Ask who answers ARP / ND for ADDRESS on this segment, and keep asking:
    /// one line per probe with the answering MACs (split brain shows as two).
    Probe {
        #[arg(long, short = 'i')]
        interface: String,
        address: std::net::IpAddr,
        /// Time between probes, in milliseconds.
        #[arg(long, default_value_t = 200)]
        every_ms: u64,
        /// Stop after this many probes (0 = until interrupted).
        #[arg(long, default_value_t = 1)]
        count: u64,
    },
    /// Write the man pages and shell completions into DIR (packaging).
    #[command(hide = true)]
    Assets {
        /// Output directory: man/ (section 8) and completions/ go there.
        dir: PathBuf,
    },
    /// Show the running agent's instances.
    Status {
        /// The agent's status as JSON.
        #[arg(long)]
        json: bool,
        /// Prometheus text format.
        #[arg(long)]
        metrics: bool,
        /// The agent's runtime directory (default: this network namespace's).
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
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
    if let Command::Run {
        config: ConfigArgs { config, config_id },
        interface: None,
        ..
    } = &cli.command
    {
        // keepalived's net_namespace: entered before any thread starts.
        if let Err(e) = enter_net_namespace(config, config_id.clone()) {
            eprintln!("xvrrp: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Run {
            config: ConfigArgs { config, config_id },
            runtime_dir,
            interface,
            xdp_mode,
            clean,
        } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(async {
                    match interface {
                        Some(ifname) => xvrrp::daemon::run_monitor(&ifname, xdp_mode).await,
                        None => {
                            xvrrp::daemon::run(xvrrp::daemon::Options {
                                config,
                                config_id,
                                runtime_dir,
                                xdp_mode,
                                clean,
                            })
                            .await
                        }
                    }
                })
            }),
        Command::Check {
            config: ConfigArgs { config, config_id },
            json,
            strict,
        } => return check(&config, json, config_id, strict),
        Command::Assets { dir } => assets(&dir),
        Command::Probe {
            interface,
            address,
            every_ms,
            count,
        } => probe(&interface, address, every_ms, count),
        Command::Status {
            json,
            metrics,
            runtime_dir,
        } => {
            let dir = xvrrp::control::runtime_dir(runtime_dir.as_deref());
            xvrrp::control::fetch(&dir).map(|status| {
                let text = if json {
                    xvrrp::control::render::json(&status)
                } else if metrics {
                    xvrrp::control::render::metrics(&status)
                } else {
                    xvrrp::control::render::table(&status)
                };
                println!("{}", text.trim_end());
            })
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xvrrp: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The config's `net_namespace`, entered. A config that does not load is
/// left for `run` to report.
fn enter_net_namespace(path: &std::path::Path, config_id: Option<String>) -> anyhow::Result<()> {
    let opts = xvrrp::config::LoadOptions {
        config_id,
        strict: false,
    };
    if let (Some(cfg), _) = xvrrp::config::load(path, &opts) {
        if let Some(name) = &cfg.global.net_namespace {
            xvrrp::net::netns::enter(name)?;
            tracing::info!("net_namespace {name}: running in /run/netns/{name}");
        }
    }
    Ok(())
}

/// `xvrrp check`: exit 0 when the config loads (warnings allowed), 1 with
/// every error found.
fn check(
    path: &std::path::Path,
    json: bool,
    config_id: Option<String>,
    strict: bool,
) -> std::process::ExitCode {
    let opts = xvrrp::config::LoadOptions { config_id, strict };
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

/// `xvrrp probe`: `+SECONDS MAC[,MAC...]` per probe ("-" when nobody answers).
fn probe(
    interface: &str,
    address: std::net::IpAddr,
    every_ms: u64,
    count: u64,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let prober = xvrrp::net::probe::Prober::open(interface)?;
    let start = std::time::Instant::now();
    let every = std::time::Duration::from_millis(every_ms.max(10));
    let mut n = 0;
    while count == 0 || n < count {
        let t = start.elapsed().as_secs_f64();
        let macs = prober.who_has(address, every.min(std::time::Duration::from_millis(300)))?;
        let list: Vec<String> = macs.iter().map(xvrrp::net::probe::format_mac).collect();
        println!(
            "+{t:.3} {}",
            if list.is_empty() {
                "-".to_owned()
            } else {
                list.join(",")
            }
        );
        let _ = std::io::stdout().flush();
        n += 1;
        let next = start + every * n as u32;
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    Ok(())
}

/// The man pages (xvrrp.8 and one per subcommand, from the clap
/// definitions) and bash/zsh/fish completions, for the package.
fn assets(dir: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory as _;
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut cmd = Cli::command().name("xvrrp");
    cmd.build();
    let mut pages = vec![("xvrrp".to_owned(), cmd.clone())];
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("xvrrp-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(page).section("8").render(&mut text)?;
        std::fs::write(man.join(format!("{name}.8")), text)?;
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd.clone(), "xvrrp", &completions)?;
    }
    Ok(())
}
