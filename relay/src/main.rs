//! `occ-relay`: run the reference relay.
//!
//! ```text
//! occ-relay --data DIR [--listen ADDR:PORT] (--dev | --cert FILE --key FILE) [--purge-interval SECS]
//!           [--push-gateway HOST]... [--push-ca PEM] [--metrics ADDR:PORT] [--org-key HEX]
//!           [--unlimited]
//! occ-relay --openapi      # print the API's OpenAPI 3.1 description
//! occ-relay --data DIR admin policy --org-key-file FILE --policy POLICY.json
//! occ-relay --data DIR admin (lock|unlock|wipe) --org-key-file FILE --user U --device HEX
//! ```
//!
//! `admin` signs with the organisation key file (the administrator's, from
//! `occ admin keygen`) in its own process and stores the document for the
//! relay serving `DIR` to hand out; the serving relay never holds the key.
//! The policy file is JSON (`occ_protocol::org::OrgPolicy`); its `issued_ms`
//! is set to now.
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

use clap::{Parser, Subcommand};
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
    #[command(subcommand)]
    admin: Option<Top>,
}

#[derive(Subcommand)]
enum Top {
    /// Organisation documents, signed with the organisation key file.
    Admin {
        #[command(subcommand)]
        command: Admin,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Publish a policy (JSON; its version must be newer than the held one).
    Policy {
        /// The organisation key file.
        #[arg(long)]
        org_key_file: PathBuf,
        /// The policy (JSON).
        #[arg(long)]
        policy: PathBuf,
    },
    /// Lock a device's profile until it is unlocked.
    Lock(Target),
    /// Lift a lock.
    Unlock(Target),
    /// Wipe a device's profile at its next contact.
    Wipe(Target),
}

#[derive(clap::Args)]
struct Target {
    /// The organisation key file.
    #[arg(long)]
    org_key_file: PathBuf,
    /// The device's user.
    #[arg(long)]
    user: String,
    /// The device (64 hex characters).
    #[arg(long)]
    device: String,
}

fn admin(data: &std::path::Path, command: Admin) -> Result<String, occ_relay::RelayError> {
    use occ_protocol::org::{CommandAction, DeviceCommand, OrgPolicy};
    use occ_relay::admin as a;
    let now = occ_relay::now_ms();
    let (target, action) = match command {
        Admin::Policy {
            org_key_file,
            policy,
        } => {
            let org = a::load_org_key(&org_key_file)?;
            let text = std::fs::read(&policy)
                .map_err(|e| occ_relay::RelayError::io("read", &policy, e))?;
            let mut p: OrgPolicy = serde_json::from_slice(&text)
                .map_err(|e| occ_relay::RelayError::BadRequest(format!("the policy: {e}")))?;
            p.issued_ms = now;
            a::publish_policy(data, &org, &p)?;
            return Ok(format!("published policy version {}", p.version));
        }
        Admin::Lock(t) => (t, CommandAction::Lock),
        Admin::Unlock(t) => (t, CommandAction::Unlock),
        Admin::Wipe(t) => (t, CommandAction::Wipe),
    };
    let org = a::load_org_key(&target.org_key_file)?;
    a::issue_command(
        data,
        &org,
        &DeviceCommand {
            action,
            user: target.user.clone(),
            device_id: target.device.to_ascii_lowercase(),
            issued_ms: now,
        },
    )?;
    Ok(format!(
        "queued {action:?} for device {} of {}",
        target.device, target.user
    ))
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
    if let Some(Top::Admin { command }) = args.admin {
        match admin(&data, command) {
            Ok(done) => println!("{done}"),
            Err(e) => {
                eprintln!("occ-relay: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
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
