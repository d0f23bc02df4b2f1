//! `occ-relay`: run the reference relay.
//!
//! ```text
//! occ-relay --data DIR [--listen ADDR:PORT] (--dev | --cert FILE --key FILE) [--purge-interval SECS]
//!           [--push-gateway HOST]... [--push-ca PEM] [--metrics ADDR:PORT] [--org-key HEX]
//!           [--unlimited]
//! occ-relay --openapi      # print the API's OpenAPI 3.1 description
//! ```
//!
//! Push endpoints must be `https://` URLs on a `--push-gateway` host (with
//! `--dev`, `localhost` is one). `--metrics` serves `/health` and `/metrics`
//! (Prometheus text) on a separate plain-HTTP listener.
//!
//! On stdout it prints the lines a client needs: `pin: sha256/<base64>` and,
//! with `--dev`, `ca: <path of the CA certificate PEM>`. The bound address
//! goes to stderr (`occ-relay listening on ADDR`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use occ_relay::{RelayConfig, TlsSource};

#[derive(Parser)]
#[command(name = "occ-relay", about = "occ reference store-and-forward relay")]
struct Args {
    /// Data directory (database, service key, dev certificates).
    #[arg(long, required_unless_present = "openapi")]
    data: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Make (once) a private CA and a localhost certificate; print the pin.
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    dev: bool,
    /// Server certificate chain (PEM, leaf first).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Seconds between purges of expired envelopes.
    #[arg(long, default_value_t = 5)]
    purge_interval: u64,
    /// A host push endpoints may name (repeat for several).
    #[arg(long = "push-gateway")]
    push_gateways: Vec<String>,
    /// Extra CA certificates (PEM) trusted for push gateways.
    #[arg(long)]
    push_ca: Option<PathBuf>,
    /// Where to serve /health and /metrics (plain HTTP; keep it internal).
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// The organisation's public key (hex): revocation lists it signs are
    /// accepted and served.
    #[arg(long)]
    org_key: Option<String>,
    /// Turn every abuse limit off (benchmarks and trusted test rigs only).
    #[arg(long)]
    unlimited: bool,
    /// Print the API's OpenAPI 3.1 description (JSON) and exit.
    #[arg(long, exclusive = true)]
    openapi: bool,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.openapi {
        println!("{}", occ_relay::openapi::openapi_json());
        return;
    }
    let Some(data) = args.data else {
        eprintln!("occ-relay: give --data DIR");
        std::process::exit(2);
    };
    let tls = match (args.dev, args.cert, args.key) {
        (true, _, _) => TlsSource::Dev,
        (false, Some(cert), Some(key)) => TlsSource::Files { cert, key },
        _ => {
            eprintln!("occ-relay: give --dev or both --cert and --key");
            std::process::exit(2);
        }
    };
    let mut config = RelayConfig::dev(data);
    config.listen = args.listen;
    config.purge_interval = Duration::from_secs(args.purge_interval.max(1));
    if !matches!(tls, TlsSource::Dev) {
        config.limits.push_gateways.clear();
    }
    config.tls = tls;
    if args.unlimited {
        let gateways = std::mem::take(&mut config.limits.push_gateways);
        config.limits = occ_relay::Limits {
            push_gateways: gateways,
            ..occ_relay::Limits::unlimited()
        };
    }
    config.limits.push_gateways.extend(args.push_gateways);
    config.metrics_listen = args.metrics;
    if let Some(k) = &args.org_key {
        match hex::decode(k.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            Some(key) => config.org_key = Some(key),
            None => {
                eprintln!("occ-relay: --org-key is 64 hex characters");
                std::process::exit(2);
            }
        }
    }
    if let Some(path) = &args.push_ca {
        match occ_relay::tls::load_certs(path) {
            Ok(certs) => config.push_roots = certs.into_iter().map(|c| c.to_vec()).collect(),
            Err(e) => {
                eprintln!("occ-relay: {e}");
                std::process::exit(2);
            }
        }
    }
    let relay = match occ_relay::start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("occ-relay: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("occ-relay listening on {}", relay.addr);
    if let Some(m) = relay.metrics_addr {
        eprintln!("occ-relay metrics on http://{m}/metrics");
    }
    println!("pin: {}", relay.pin);
    if let Some(ca) = &relay.ca_path {
        println!("ca: {}", ca.display());
    }
    let _ = tokio::signal::ctrl_c().await;
    relay.shutdown().await;
}
