//! `sipbench`: a load generator for SIP over WebSocket servers (RFC 7118), for benchmarks only.
//! A hand-written minimal client (raw TCP, RFC 6455 client handshake, masked text frames) on a
//! few tokio worker threads, each driving many connections.

mod conn;
mod digest;
mod hist;
mod hs;
mod idle;
mod measure;
mod procfs;
mod register;
mod relay;
mod rr;
mod sink;
mod storm;
mod tls;
mod ua;
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
        /// Server host:port; several, comma-separated, for the nodes of a cluster: pair i's B
        /// connects to node i mod N and its A to node (i / N) mod N, so with P a multiple of
        /// N*N, (N-1)/N of the MESSAGEs cross nodes.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Seconds to wait after every B registered before the As start (for the nodes of a
        /// cluster to learn the other nodes' registrations).
        #[arg(long, default_value_t = 0.0)]
        settle: f64,
        /// Every pair crosses nodes: A on node (i + 1) mod N instead (latency of the hop).
        #[arg(long)]
        all_cross: bool,
        /// B registers and answers over UDP, to this server address (host:port): every
        /// MESSAGE goes in over WebSocket and out over UDP.
        #[arg(long)]
        callee_udp: Option<String>,
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
    /// Authenticated registrations: C connections sharing U users `user<N>@domain` (password
    /// `pw<N>`), each looping REGISTER -> 401 -> REGISTER with MD5 digest credentials -> 200;
    /// registrations per server CPU-second and the latency of each registration.
    Register {
        /// Server host:port.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// SIP domain of the users (and digest realm).
        #[arg(long, default_value = "example.com")]
        domain: String,
        /// Connections.
        #[arg(short = 'c', long, default_value_t = 100)]
        conns: usize,
        /// Users, spread over the connections (connection i registers users i, i+C, ... in
        /// turn); at least C.
        #[arg(short = 'u', long, default_value_t = 1000)]
        users: usize,
        /// Number of the first user.
        #[arg(long, default_value_t = 0)]
        first: usize,
        /// Re-register with credentials for the last nonce (nc + 1), as clients do, instead of
        /// a fresh 401 round each time; only an expired nonce is challenged again.
        #[arg(long)]
        reuse_nonce: bool,
        /// Registration lifetime asked for (Contact expires and Expires), seconds.
        #[arg(long, default_value_t = 600)]
        expires: u32,
        /// Answer the challenges with a wrong password (a check that the server refuses it:
        /// every registration must fail).
        #[arg(long)]
        wrong_password: bool,
        #[command(flatten)]
        window_args: measure::Window,
    },
    /// Registration storm: N clients, one connection and one loopback source address each, all
    /// registered, then all re-registering at once; each one's time to its 200 against the
    /// 32 s window (Timer F), and a witness's OPTIONS latency before and during the storm.
    Storm {
        /// Server ip:port.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// SIP domain of the users (and digest realm).
        #[arg(long, default_value = "example.com")]
        domain: String,
        /// Clients.
        #[arg(short = 'n', long, default_value_t = 10000)]
        clients: usize,
        /// Number of the first user.
        #[arg(long, default_value_t = 0)]
        first: usize,
        /// Source address of the first client; client i binds this + i.
        #[arg(long, default_value = "127.1.0.1")]
        src_base: std::net::Ipv4Addr,
        /// Connection setups (with their first registration) in progress at once.
        #[arg(long, default_value_t = 200)]
        concurrency: usize,
        /// Re-register with credentials for the held nonce instead of a fresh 401 round.
        #[arg(long)]
        reuse_nonce: bool,
        /// Registration lifetime asked for, seconds.
        #[arg(long, default_value_t = 600)]
        expires: u32,
        /// Seconds within which every client must have its 200 (Timer F = 64*T1).
        #[arg(long, default_value_t = 32.0)]
        window: f64,
        /// Seconds of witness measurements before the storm.
        #[arg(long, default_value_t = 5.0)]
        baseline: f64,
        /// Request-URI of the witness's OPTIONS (the server itself, answered before auth).
        #[arg(long, default_value = "sip:127.0.0.1")]
        witness_ruri: String,
        /// Pause between two witness OPTIONS, ms.
        #[arg(long, default_value_t = 10.0)]
        witness_gap_ms: f64,
        /// Server PID (CPU seconds during the storm).
        #[arg(long)]
        pid: Option<u32>,
        /// Also count the server PID's descendant processes.
        #[arg(long)]
        tree: bool,
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
                settle,
                all_cross,
                callee_udp,
                domain,
                pairs,
                window,
                window_args,
            } => {
                procfs::raise_nofile();
                relay::run(relay::RelayArgs {
                    addr,
                    settle,
                    all_cross,
                    callee_udp,
                    domain,
                    pairs: pairs.max(1),
                    window: window.max(1),
                    window_args,
                })
                .await
            }
            Mode::Register {
                addr,
                domain,
                conns,
                users,
                first,
                reuse_nonce,
                expires,
                wrong_password,
                window_args,
            } => {
                procfs::raise_nofile();
                register::run(register::RegisterArgs {
                    target: target(&addr)?,
                    domain,
                    conns: conns.max(1),
                    users,
                    first,
                    reuse_nonce,
                    expires,
                    wrong_password,
                    window_args,
                })
                .await
            }
            Mode::Storm {
                addr,
                domain,
                clients,
                first,
                src_base,
                concurrency,
                reuse_nonce,
                expires,
                window,
                baseline,
                witness_ruri,
                witness_gap_ms,
                pid,
                tree,
            } => {
                procfs::raise_nofile();
                storm::run(storm::StormArgs {
                    target: target(&addr)?,
                    domain,
                    clients,
                    first,
                    src_base,
                    concurrency,
                    reuse_nonce,
                    expires,
                    window_s: window,
                    baseline_s: baseline,
                    witness_ruri,
                    witness_gap_ms,
                    pid,
                    tree,
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
