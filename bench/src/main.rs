//! `sipbench`: a load generator for SIP over WebSocket servers (RFC 7118), for benchmarks only.
//! A hand-written minimal client (raw TCP, RFC 6455 client handshake, masked text frames) on a
//! few tokio worker threads, each driving many connections.

mod conn;
mod hist;
mod hs;
mod idle;
mod measure;
mod procfs;
mod relay;
mod rr;
mod sink;
mod tls;
mod ws;

use clap::{Parser, Subcommand};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "sipbench",
    about = "SIP over WebSocket load generator (benchmarks)"
)]
struct Cli {
    /// Client worker threads.
    #[arg(short = 't', long, default_value_t = 1, global = true)]
    threads: usize,
    /// TLS (`wss`) for rr, hs and idle; `--addr wss://host:port` implies it. Any server
    /// certificate is accepted and no session is ever resumed.
    #[arg(long, global = true)]
    tls: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Request/response: C connections, W OPTIONS in flight each, for D seconds.
    Rr {
        /// Server host:port (`wss://host:port` for TLS).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Connections.
        #[arg(short = 'c', long, default_value_t = 50)]
        conns: usize,
        /// OPTIONS in flight per connection.
        #[arg(short = 'w', long, default_value_t = 10)]
        window: usize,
        /// Request-URI (and To) of the OPTIONS: `sip:host` without a user is what keep-alive
        /// pings send, which a registrar configuration answers itself.
        #[arg(long, default_value = "sip:bench@127.0.0.1")]
        ruri: String,
        #[command(flatten)]
        window_args: measure::Window,
    },
    /// Handshake rate: C setups at once, each TCP connect + TLS full handshake (wss) +
    /// WebSocket upgrade + close, repeated for D seconds; setups per server CPU-second.
    Hs {
        /// Server host:port (`wss://host:port` for TLS, or with --tls).
        #[arg(long, default_value = "127.0.0.1:8443")]
        addr: String,
        /// Setups in progress at once.
        #[arg(short = 'c', long, default_value_t = 16)]
        conns: usize,
        /// Spread connections over K source addresses 127.0.0.2..=127.0.0.(K+1) (0 = one).
        #[arg(long, default_value_t = 8)]
        src_ips: u8,
        #[command(flatten)]
        window_args: measure::Window,
    },
    /// Open N idle connections as fast as possible, hold them, report memory per connection.
    Idle {
        /// Server host:port (`wss://host:port` for TLS).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Connections.
        #[arg(short = 'n', long, default_value_t = 5000)]
        n: usize,
        /// Handshakes in progress at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Seconds to hold the connections before reading the server's memory.
        #[arg(long, default_value_t = 2.0)]
        hold: f64,
        /// Server PID (VmRSS/Pss from /proc).
        #[arg(long)]
        pid: Option<u32>,
        /// Also count the server PID's descendant processes (multi-process servers).
        #[arg(long)]
        tree: bool,
        /// Spread connections over K source addresses 127.0.0.2..=127.0.0.(K+1) (0 = one).
        #[arg(long, default_value_t = 0)]
        src_ips: u8,
    },
    /// Relay: P pairs; B registers and answers MESSAGE with 200, A keeps W MESSAGEs to B in
    /// flight through the server (registrar lookup + proxy).
    Relay {
        /// Server host:port.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// SIP domain of the users (the server must treat it as local).
        #[arg(long, default_value = "example.com")]
        domain: String,
        /// Pairs of users.
        #[arg(short = 'p', long, default_value_t = 25)]
        pairs: usize,
        /// MESSAGEs in flight per pair.
        #[arg(short = 'w', long, default_value_t = 10)]
        window: usize,
        #[command(flatten)]
        window_args: measure::Window,
    },
    /// UDP sink that discards datagrams (a stand-in HEP collector); prints counts periodically.
    Sink {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1:9060")]
        bind: String,
        /// Never read: let the kernel drop datagrams when the socket buffer is full.
        #[arg(long)]
        no_read: bool,
        /// Listen on TCP (HEPv3 packets back to back) instead of UDP.
        #[arg(long)]
        tcp: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Mode::Sink { bind, no_read, tcp } = &cli.mode {
        let r = if *tcp {
            sink::run_tcp(bind)
        } else {
            sink::run(bind, *no_read)
        };
        if let Err(e) = r {
            eprintln!("sipbench sink: {e}");
            std::process::exit(1);
        }
        return;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipbench: runtime: {e}");
            std::process::exit(1);
        }
    };
    let secs = Duration::from_secs_f64;
    let tls = cli.tls;
    let target = |addr: &str| conn::Target::new(addr, tls).map_err(|e| format!("TLS: {e}"));
    let r = rt.block_on(async move {
        match cli.mode {
            Mode::Rr {
                addr,
                conns,
                window,
                ruri,
                window_args,
            } => {
                procfs::raise_nofile();
                rr::run(rr::RrArgs {
                    target: target(&addr)?,
                    conns,
                    window: window.max(1),
                    ruri,
                    window_args,
                })
                .await
            }
            Mode::Idle {
                addr,
                n,
                concurrency,
                hold,
                pid,
                tree,
                src_ips,
            } => {
                idle::run(idle::IdleArgs {
                    target: target(&addr)?,
                    n,
                    concurrency,
                    hold: secs(hold),
                    pid,
                    tree,
                    src_ips: src_ips.min(250),
                })
                .await
            }
            Mode::Hs {
                addr,
                conns,
                src_ips,
                window_args,
            } => {
                procfs::raise_nofile();
                hs::run(hs::HsArgs {
                    target: target(&addr)?,
                    conns: conns.max(1),
                    src_ips: src_ips.min(250),
                    window_args,
                })
                .await
            }
            Mode::Relay {
                addr,
                domain,
                pairs,
                window,
                window_args,
            } => {
                procfs::raise_nofile();
                relay::run(relay::RelayArgs {
                    addr,
                    domain,
                    pairs: pairs.max(1),
                    window: window.max(1),
                    window_args,
                })
                .await
            }
            Mode::Sink { .. } => Ok(()),
        }
    });
    if let Err(e) = r {
        eprintln!("sipbench: {e}");
        std::process::exit(1);
    }
}
