//! `occ`: the scriptable terminal client, and `occ demo`.
//!
//! ```text
//! occ --profile DIR init --server URL --pin PIN [--pin BACKUP] [--ca FILE] --user NAME [--push URL]
//! occ --profile DIR send --to USER[,USER...] [--thread ID] --ttl SECONDS [--read-timer SECONDS] TEXT
//! occ --profile DIR sync [--wait SECONDS | --watch]
//! occ --profile DIR messages [--thread ID] [--limit N] [--json]
//! occ --profile DIR threads [--json]
//! occ --profile DIR fetch RELAY_MESSAGE_ID
//! occ --profile DIR settings [--keep-period SECONDS]
//! occ --profile DIR purge [--json]
//! occ --profile DIR send --to USER --ttl SECONDS --urgent [--ack-within SECONDS] TEXT
//! occ --profile DIR notice verify FILE [--json]
//! occ --profile DIR download RELAY_MESSAGE_ID [--json]
//! occ --profile DIR decline RELAY_MESSAGE_ID
//! occ --profile DIR ack MESSAGE_ID [--reply TEXT]
//! occ --profile DIR receipts MESSAGE_ID [--json]
//! occ --profile DIR audit verify [--offline] [--json]
//! occ --profile DIR audit export [--thread ID]
//! occ --profile DIR policy show [--json]
//! occ --profile DIR send --to USER --ttl SECONDS --attach FILE [--mime TYPE] [CAPTION]
//! occ --profile DIR attachment list MESSAGE_ID [--json]
//! occ --profile DIR attachment save ATTACHMENT_ID PATH
//! occ --profile DIR attachment quota [--set BYTES]
//! occ --profile DIR export (--thread ID | --message ID) --out DIR [--passphrase-file F | --passphrase-env | --recipient age1...]
//!                          [--dlp-cards] [--dlp-pattern RE]... [--redact] [--no-attachments] [--json]
//! occ export verify DIR [--json]
//! occ demo
//! ```
//!
//! The profile key lives in `DIR/profile.key` (mode 0600, hex); on phones the
//! app keeps it in the Android Keystore / iOS Keychain instead. A failing
//! command exits non-zero with one line on stderr (a pin failure says "pin").

mod admin;
mod demo;
mod files;
mod output;
mod profile_dir;
mod terminal;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use occ_core::store::DbKey;
use occ_core::{Client, EnrolOptions, Error, Recipient, RelaySettings};

#[derive(Parser)]
#[command(name = "occ", version, about = "occ terminal client")]
struct Cli {
    /// Profile directory (holds the encrypted database and its key file).
    #[arg(long, global = true)]
    profile: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an organisation key file (mode 0600) and print its public key.
    Keygen {
        /// Where to write the key (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Certify that a device belongs to a user; prints the certificate.
    Certify {
        /// The organisation key file.
        #[arg(long)]
        key: PathBuf,
        /// The user.
        #[arg(long)]
        user: String,
        /// The device id (hex, as `occ init` printed it).
        #[arg(long)]
        device: String,
        /// Validity in days from now.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Sign a revocation list (every revoked device, each time; the version
    /// must exceed the last one published); prints it.
    Revoke {
        /// The organisation key file.
        #[arg(long)]
        key: PathBuf,
        /// The list's version.
        #[arg(long)]
        version: u64,
        /// Revoked device ids (hex), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        devices: Vec<String>,
    },
}

#[derive(Subcommand)]
enum CertificateCommand {
    /// Install the certificate (hex, in FILE) from the administrator.
    Install {
        /// File holding the certificate.
        file: PathBuf,
    },
    /// Apply and publish the administrator's revocation list (hex, in FILE).
    Revocations {
        /// File holding the list.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Print this device's id; on a new device, first creates the profile
    /// (not yet enrolled) so another device of the user can link it.
    Id,
    /// Link another device of this user (its id from `occ device id`):
    /// prints the link it enrols with (`occ init --link FILE`).
    Link {
        /// The new device's id (64 hex characters).
        device_id: String,
    },
    /// Remove a device of this user (a lost one, or this one): it receives
    /// nothing more and cannot register again.
    Remove {
        /// The device's id (64 hex characters).
        device_id: String,
    },
}

#[derive(Subcommand)]
enum NoticeCommand {
    /// Verify a notice (the JSON the push carried, in FILE) and show its
    /// prompt; nothing is downloaded.
    Verify {
        /// File holding the notice.
        file: PathBuf,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the chain, the countersigned heads and (unless --offline) the
    /// relay's newest countersigned head; exits non-zero if broken.
    Verify {
        /// Do not ask the relay.
        #[arg(long)]
        offline: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Print the entries as JSON lines (oldest first).
    Export {
        /// Only one thread's timeline.
        #[arg(long)]
        thread: Option<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Show the policy in force (after fetching a newer one).
    Show {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Create a profile and enrol it with a relay.
    Init {
        /// Relay URL, e.g. https://localhost:8443.
        #[arg(long)]
        server: String,
        /// SPKI pin `sha256/<base64>`; repeat for backup pins.
        #[arg(long = "pin", required = true)]
        pins: Vec<String>,
        /// CA certificate (PEM) to trust instead of the public roots.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// User name to enrol as.
        #[arg(long)]
        user: String,
        /// Push endpoint URL for push notices.
        #[arg(long)]
        push: Option<String>,
        /// The organisation's public key (hex, from `occ admin keygen`):
        /// only devices it certifies are messaged or believed.
        #[arg(long)]
        org_key: Option<String>,
        /// A further device of USER: the link (hex, in FILE) that one of
        /// USER's devices made for this one with `occ device link`; the
        /// profile `occ device id` made here is then enrolled.
        #[arg(long)]
        link: Option<PathBuf>,
    },
    /// This device, and linking further devices of this user.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// The organisation key (administrators; never on the relay).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// This device's organisation certificate.
    Certificate {
        #[command(subcommand)]
        command: CertificateCommand,
    },
    /// Send a text message (to users, or to a thread with them).
    Send {
        /// Recipient user(s), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        /// Thread id: send in this thread (with the recipients as members);
        /// `new` starts a thread with a fresh id bound to you (printed).
        #[arg(long)]
        thread: Option<String>,
        /// Time To Live in seconds.
        #[arg(long)]
        ttl: u64,
        /// Expire this many seconds after the recipient first opens it.
        #[arg(long)]
        read_timer: Option<u64>,
        /// An urgent alert: recipients return receipts.
        #[arg(long, conflicts_with = "read_timer")]
        urgent: bool,
        /// With --urgent: escalate if not acknowledged within this many
        /// seconds.
        #[arg(long, requires = "urgent")]
        ack_within: Option<u64>,
        /// Send this file (encrypted, through the relay); the text is its
        /// caption.
        #[arg(long, conflicts_with_all = ["urgent", "read_timer"])]
        attach: Option<PathBuf>,
        /// With --attach: the MIME type (guessed from the extension).
        #[arg(long, requires = "attach")]
        mime: Option<String>,
        /// The text (the caption with --attach).
        #[arg(default_value = "")]
        text: String,
    },
    /// Attachments: list, save (downloading first), quota.
    Attachment {
        #[command(subcommand)]
        command: files::AttachmentCommand,
    },
    /// Export a thread or message to a signed folder; `export verify DIR`
    /// checks one.
    Export(files::ExportArgs),
    /// Push notices: verify one offline and show its download prompt.
    Notice {
        #[command(subcommand)]
        command: NoticeCommand,
    },
    /// Download the message a push notice announced (its relay id).
    Download {
        /// Relay message id.
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Decline the message a push notice announced: it is never stored.
    Decline {
        /// Relay message id.
        id: String,
    },
    /// Acknowledge an urgent alert.
    Ack {
        /// The message id.
        id: String,
        /// A short reply.
        #[arg(long)]
        reply: Option<String>,
    },
    /// Each recipient's progress with an urgent alert you sent.
    Receipts {
        /// The message id.
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The organisation's policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Deliver the outbox and fetch new messages.
    Sync {
        /// Seconds to wait for the first new message.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Keep syncing in the background, printing events, until Ctrl-C.
        #[arg(long)]
        watch: bool,
    },
    /// List messages (newest first), filtered by retention.
    Messages {
        /// Only this thread.
        #[arg(long)]
        thread: Option<String>,
        /// At most this many per thread.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List threads.
    Threads {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Download one message by its relay id (as a push notice names it).
    Fetch {
        /// Relay message id.
        id: String,
    },
    /// Show or change settings.
    Settings {
        /// Device keep period in seconds.
        #[arg(long)]
        keep_period: Option<u64>,
        /// Keep metadata (security events, purge log, idle contacts and
        /// conversations) this many seconds.
        #[arg(long)]
        metadata_retention: Option<u64>,
    },
    /// Show the safety number with USER (compare it in person), or accept
    /// their changed identity.
    Verify {
        /// The contact.
        user: String,
        /// Accept their current keys (sending to them resumes).
        #[arg(long)]
        accept: bool,
        /// Accept and record that the numbers were compared and match.
        #[arg(long, conflicts_with = "accept")]
        verified: bool,
    },
    /// Remove everything past its deadline now.
    Purge {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Walk through the whole system on this machine.
    Demo,
}

/// A one-line failure for stderr.
#[derive(Debug)]
pub(crate) struct Fail(String);

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail(e.to_string())
    }
}

impl From<occ_core::store::StoreError> for Fail {
    fn from(e: occ_core::store::StoreError) -> Self {
        Fail(e.to_string())
    }
}

const KEY_FILE: &str = "profile.key";

fn write_key_file(dir: &Path, key: &DbKey) -> Result<(), Fail> {
    let path = dir.join(KEY_FILE);
    let hex = zeroize::Zeroizing::new(hex::encode(key.as_bytes()));
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                Fail(format!(
                    "cannot create the key file {}: {e}",
                    path.display()
                ))
            })?;
        f.write_all(hex.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| Fail(format!("cannot write the key file {}: {e}", path.display())))
    }
    #[cfg(not(unix))]
    std::fs::write(&path, hex.as_bytes())
        .map_err(|e| Fail(format!("cannot write the key file: {e}")))
}

fn read_key_file(dir: &Path) -> Result<DbKey, Fail> {
    let path = dir.join(KEY_FILE);
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
        Fail(format!(
            "cannot read the key file {} ({e}); run `occ init` first",
            path.display()
        ))
    })?);
    let bytes = zeroize::Zeroizing::new(
        hex::decode(text.trim())
            .map_err(|_| Fail(format!("the key file {} is not hex", path.display())))?,
    );
    DbKey::from_slice(&bytes).map_err(|_| {
        Fail(format!(
            "the key file {} does not hold a 32-byte key",
            path.display()
        ))
    })
}

fn profile(cli: &Cli) -> Result<&Path, Fail> {
    cli.profile
        .as_deref()
        .ok_or_else(|| Fail("this command needs --profile DIR".into()))
}

/// A path as the core takes it.
pub(crate) fn path_str(dir: &Path) -> Result<&str, Fail> {
    dir.to_str()
        .ok_or_else(|| Fail(format!("the path {} is not valid UTF-8", dir.display())))
}

fn open(dir: &Path) -> Result<Client, Fail> {
    let key = read_key_file(dir)?;
    Ok(Client::open(path_str(dir)?, key.as_bytes().to_vec())?)
}

/// Creates the profile in a prepared directory and enrols it.
/// A new profile in `dir` with its key file (not enrolled).
fn create_profile(dir: &Path) -> Result<Client, Fail> {
    let key = DbKey::generate()?;
    let client = Client::create(path_str(dir)?, key.as_bytes().to_vec())?;
    write_key_file(dir, &key)?;
    Ok(client)
}

async fn init_profile(dir: &Path, opts: EnrolOptions) -> Result<(), Fail> {
    let client = create_profile(dir)?;
    let result = client.enrol(opts).await;
    client.close();
    enrolled(&result?)
}

/// Reports an enrolment.
fn enrolled(e: &occ_core::Enrolment) -> Result<(), Fail> {
    println!(
        "enrolled {} as device {} with {}",
        e.user, e.device_id, e.relay.url
    );
    println!(
        "relay identity verified: pinned certificate, signed acknowledgement (service key {})",
        e.service_key
    );
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Fail> {
    match &cli.command {
        Command::Demo => demo::run().await,
        Command::Admin {
            command: AdminCommand::Keygen { out },
        } => {
            let public = admin::keygen(out)?;
            println!("organisation key written to {}", out.display());
            println!("public key (give it to every member: occ init --org-key): {public}");
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Certify {
                    key,
                    user,
                    device,
                    days,
                },
        } => {
            println!("{}", admin::certify_device(key, user, device, *days)?);
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Revoke {
                    key,
                    version,
                    devices,
                },
        } => {
            println!("{}", admin::revoke_devices(key, *version, devices)?);
            Ok(())
        }
        Command::Certificate {
            command: CertificateCommand::Revocations { file },
        } => {
            let list = admin::read_hex_file(file, "revocation list")?;
            let client = open(profile(&cli)?)?;
            client.publish_revocations(list).await?;
            println!("revocation list applied and published");
            Ok(())
        }
        Command::Certificate {
            command: CertificateCommand::Install { file },
        } => {
            let cert = admin::read_hex_file(file, "certificate")?;
            let client = open(profile(&cli)?)?;
            client.install_certificate(cert).await?;
            println!("certificate installed");
            Ok(())
        }
        Command::Init {
            server,
            pins,
            ca,
            user,
            push,
            org_key,
            link,
        } => {
            let dir = profile(&cli)?;
            let link = link
                .as_ref()
                .map(|p| admin::read_hex_file(p, "link"))
                .transpose()?;
            let ca_pem = ca
                .as_ref()
                .map(|p| {
                    std::fs::read_to_string(p)
                        .map_err(|e| Fail(format!("cannot read the CA file {}: {e}", p.display())))
                })
                .transpose()?;
            let opts = EnrolOptions {
                relay: RelaySettings {
                    url: server.clone(),
                    pins: pins.clone(),
                    ca_pem,
                    ..Default::default()
                },
                user: user.clone(),
                push_endpoint: push.clone(),
                org_key: org_key.clone(),
                link,
            };
            if opts.link.is_some() && profile_dir::is_profile(dir) {
                // Made by `occ device id`, so the linking device knew its id.
                let client = open(dir)?;
                let result = client.enrol(opts).await;
                client.close();
                return enrolled(&result?);
            }
            let made = profile_dir::prepare(dir)?;
            let result = init_profile(dir, opts).await;
            if result.is_err() {
                made.undo();
            }
            result
        }
        Command::Device {
            command: DeviceCommand::Id,
        } => {
            let dir = profile(&cli)?;
            let client = if profile_dir::is_profile(dir) {
                open(dir)?
            } else {
                let made = profile_dir::prepare(dir)?;
                match create_profile(dir) {
                    Ok(c) => c,
                    Err(e) => {
                        made.undo();
                        return Err(e);
                    }
                }
            };
            println!("{}", client.device_id().await?);
            Ok(())
        }
        Command::Device {
            command: DeviceCommand::Remove { device_id },
        } => {
            let client = open(profile(&cli)?)?;
            client.remove_device(device_id).await?;
            println!("removed device {device_id}");
            Ok(())
        }
        Command::Device {
            command: DeviceCommand::Link { device_id },
        } => {
            let client = open(profile(&cli)?)?;
            println!("{}", hex::encode(client.link_device(device_id).await?));
            Ok(())
        }
        Command::Send {
            to,
            thread,
            ttl,
            read_timer,
            urgent,
            ack_within,
            attach,
            mime,
            text,
        } => {
            let client = open(profile(&cli)?)?;
            let recipient = match (thread, to.as_slice()) {
                (Some(id), members) => {
                    // `new`: a fresh id bound to this user (cannot be squatted).
                    let id = if id == "new" {
                        let id = client.new_thread_id().await?;
                        println!("thread {id}");
                        id
                    } else {
                        id.clone()
                    };
                    Recipient::Thread {
                        id,
                        members: members.to_vec(),
                    }
                }
                (None, [one]) => Recipient::User { name: one.clone() },
                (None, _) => return Err(Fail("several recipients need --thread ID".into())),
            };
            let body = text.as_bytes().to_vec();
            let id = if let Some(path) = attach {
                files::send_file(&client, recipient, path, mime.as_deref(), text, *ttl).await?
            } else if *urgent {
                client
                    .send_urgent(recipient, body, *ttl, *ack_within)
                    .await?
            } else {
                client.send(recipient, body, *ttl, *read_timer).await?
            };
            match client.flush().await {
                Ok(r) if r.failed.iter().any(|f| f.message_id == id) => {
                    let reason = r
                        .failed
                        .iter()
                        .find(|f| f.message_id == id)
                        .map(|f| f.reason.clone())
                        .unwrap_or_default();
                    Err(Fail(format!(
                        "message {id} could not be delivered: {reason}"
                    )))
                }
                Ok(_) => {
                    println!("sent {id}");
                    Ok(())
                }
                Err(e) => Err(Fail(format!(
                    "message {id} is queued but not sent yet: {e}"
                ))),
            }
        }
        Command::Sync { watch: true, .. } => {
            let client = open(profile(&cli)?)?;
            client.set_listener(Some(std::sync::Arc::new(output::EventPrinter)))?;
            let handle = client.start_sync(occ_core::SyncOptions::default())?;
            println!("syncing in the background; Ctrl-C to stop");
            tokio::signal::ctrl_c()
                .await
                .map_err(|e| Fail(format!("cannot wait for Ctrl-C: {e}")))?;
            handle.stop();
            handle.stopped().await;
            client.close();
            occ_core::wait_for_listeners(std::time::Duration::from_secs(2));
            Ok(())
        }
        Command::Sync { wait, .. } => {
            let client = open(profile(&cli)?)?;
            let flushed = client.flush().await?;
            let received = client.receive(wait.saturating_mul(1000)).await?;
            // The rest of a sync: receipts out, the organisation's
            // documents, escalations, the audit head.
            client.set_listener(Some(std::sync::Arc::new(output::EventPrinter)))?;
            client.sync().await?;
            // Events are printed on their own thread: let it finish first.
            occ_core::wait_for_listeners(std::time::Duration::from_secs(2));
            println!(
                "sent {}, received {}, rejected {}, still queued {}",
                flushed.sent,
                received.received().len(),
                received.rejected(),
                flushed.pending
            );
            Ok(())
        }
        Command::Messages {
            thread,
            limit,
            json,
        } => {
            let client = open(profile(&cli)?)?;
            let threads = match thread {
                Some(t) => vec![t.clone()],
                None => client.threads().await?.into_iter().map(|t| t.id).collect(),
            };
            let mut all = Vec::new();
            for t in threads {
                all.extend(client.messages(&t, *limit).await?);
            }
            all.sort_by(|a, b| b.received_ms.cmp(&a.received_ms).then(b.seq.cmp(&a.seq)));
            output::messages(&all, *json);
            Ok(())
        }
        Command::Threads { json } => {
            let client = open(profile(&cli)?)?;
            output::threads(&client.threads().await?, *json);
            Ok(())
        }
        Command::Fetch { id } => {
            let client = open(profile(&cli)?)?;
            let r = client.fetch(id).await?;
            println!("downloaded {} message(s)", r.received().len());
            Ok(())
        }
        Command::Settings {
            keep_period,
            metadata_retention,
        } => {
            let client = open(profile(&cli)?)?;
            if let Some(secs) = keep_period {
                client.set_keep_period_secs(*secs).await?;
            }
            if let Some(secs) = metadata_retention {
                client.set_metadata_retention_secs(*secs).await?;
            }
            let settings = client.settings().await?;
            println!("keep period: {} seconds", settings.keep_period_secs);
            println!(
                "metadata retention: {} seconds",
                settings.metadata_retention_secs
            );
            Ok(())
        }
        Command::Verify {
            user,
            accept,
            verified,
        } => {
            let client = open(profile(&cli)?)?;
            if *accept || *verified {
                client.accept_identity(user, *verified).await?;
            }
            output::contact_identity(&client.contact_identity(user).await?);
            Ok(())
        }
        Command::Purge { json } => {
            let client = open(profile(&cli)?)?;
            let r = client.purge().await?;
            output::purge(&r, *json);
            Ok(())
        }
        Command::Notice {
            command: NoticeCommand::Verify { file, json },
        } => {
            let dir = profile(&cli)?;
            let bytes = std::fs::read(file)
                .map_err(|e| Fail(format!("cannot read {}: {e}", file.display())))?;
            let key = read_key_file(dir)?;
            let prompt = occ_core::verify_notice(path_str(dir)?, key.as_bytes().to_vec(), bytes)?;
            output::prompt(&prompt, *json);
            Ok(())
        }
        Command::Download { id, json } => {
            let client = open(profile(&cli)?)?;
            let r = client.download(id).await?;
            output::downloaded(&r, *json);
            Ok(())
        }
        Command::Decline { id } => {
            let client = open(profile(&cli)?)?;
            client.decline(id).await?;
            println!("declined {id}: it will not be stored on this device");
            Ok(())
        }
        Command::Ack { id, reply } => {
            let client = open(profile(&cli)?)?;
            client.acknowledge(id, reply.clone()).await?;
            let sent = client.flush().await?;
            println!("acknowledged {id} (receipts sent: {})", sent.sent);
            Ok(())
        }
        Command::Receipts { id, json } => {
            let client = open(profile(&cli)?)?;
            output::receipts(&client.receipts(id).await?, *json);
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { offline, json },
        } => {
            let client = open(profile(&cli)?)?;
            if !*offline {
                client.countersign_audit().await?;
            }
            let r = client.audit_verify(!*offline).await?;
            output::audit_report(&r, *json);
            match &r.broken {
                None => Ok(()),
                Some(b) => Err(Fail(format!("the audit trail is broken: {b}"))),
            }
        }
        Command::Audit {
            command: AuditCommand::Export { thread },
        } => {
            let client = open(profile(&cli)?)?;
            let entries = match thread {
                Some(t) => client.timeline(t).await?,
                None => {
                    let mut all = Vec::new();
                    loop {
                        let after = all.last().map_or(0, |e: &occ_core::AuditEntry| e.seq);
                        let page = client.audit_entries(after, 1000).await?;
                        if page.is_empty() {
                            break;
                        }
                        all.extend(page);
                    }
                    all
                }
            };
            output::audit_entries(&entries);
            Ok(())
        }
        Command::Attachment { command } => {
            let client = open(profile(&cli)?)?;
            files::attachment(&client, command).await
        }
        Command::Export(args) => match &args.verify {
            Some(files::ExportSub::Verify { dir, json }) => files::verify(dir, *json),
            None => {
                let client = open(profile(&cli)?)?;
                files::export(&client, args).await
            }
        },
        Command::Policy {
            command: PolicyCommand::Show { json },
        } => {
            let client = open(profile(&cli)?)?;
            if let Err(e) = client.org_sync().await {
                eprintln!(
                    "occ: the relay's policy was not checked: {}",
                    terminal::safe(&e.to_string())
                );
            }
            output::policy(client.policy_json().await?.as_deref(), *json);
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if let Err(Fail(reason)) = run(cli).await {
        // Reasons can quote the relay or a peer: never raw to a terminal.
        eprintln!("occ: {}", terminal::safe(&reason));
        std::process::exit(1);
    }
}
