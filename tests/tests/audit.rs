//! The audit trail against the holder of an unlocked device (who has the
//! database key): editing, deleting or reordering an entry is named at its
//! sequence number; cutting the tail, or rewriting the whole chain
//! consistently, shows against the head the relay countersigned.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use common::{Env, to};
use occ_core::AuditBreak;

/// Bob with a trail of a dozen entries, the head countersigned; closed.
async fn trail() -> (Env, u64) {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    let bob = env.client("bob").await;
    for i in 0..5 {
        alice
            .send(to("bob"), format!("m{i}").into_bytes(), 600, None)
            .await
            .unwrap();
    }
    alice.flush().await.unwrap();
    bob.receive(0).await.unwrap();
    bob.send(to("alice"), b"ok".to_vec(), 600, None)
        .await
        .unwrap();
    let head = bob.countersign_audit().await.unwrap().unwrap();
    let report = bob.audit_verify(true).await.unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.entries, head);
    assert_eq!(report.countersigned_seq, Some(head));
    assert!(report.checked_with_relay);
    assert!(head >= 6, "{head}");
    bob.close();
    (env, head)
}

async fn verify(env: &Env, online: bool) -> Option<AuditBreak> {
    let bob = env.reopen("bob");
    let r = bob.audit_verify(online).await.unwrap();
    bob.close();
    r.broken
}

/// Runs `sql` on bob's database (with its key), then verifies.
async fn tamper(env: &Env, sql: &str) -> Option<AuditBreak> {
    env.client_db("bob").execute_batch(sql).unwrap();
    verify(env, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_deleting_or_reordering_an_entry_is_named_at_its_sequence() {
    let cases = [
        (
            "UPDATE audit SET detail = 'nothing here' WHERE seq = 3",
            AuditBreak::Altered { seq: 3 },
        ),
        (
            "UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 5",
            AuditBreak::Altered { seq: 5 },
        ),
        (
            "UPDATE audit SET kind = 'declined' WHERE seq = 2",
            AuditBreak::Altered { seq: 2 },
        ),
        (
            "DELETE FROM audit WHERE seq = 4",
            AuditBreak::Missing { seq: 4 },
        ),
        (
            // Swap two entries' contents, keeping the numbering.
            "UPDATE audit SET seq = -1 WHERE seq = 2;
             UPDATE audit SET seq = 2 WHERE seq = 3;
             UPDATE audit SET seq = 3 WHERE seq = -1;",
            AuditBreak::Altered { seq: 2 },
        ),
    ];
    for (sql, expected) in cases {
        // Each case on a fresh copy of the trail.
        let (env, _) = trail().await;
        assert_eq!(tamper(&env, sql).await, Some(expected), "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_tail_or_a_rewritten_chain_shows_against_the_countersigned_head() {
    let (env, head) = trail().await;
    // Cut the last two entries: the local countersignature names the head.
    env.client_db("bob")
        .execute("DELETE FROM audit WHERE seq > ?1", [head as i64 - 2])
        .unwrap();
    assert_eq!(
        verify(&env, false).await,
        Some(AuditBreak::Truncated { seq: head })
    );
    // Also delete the countersignatures held on the device: the relay's
    // record still names the head.
    env.client_db("bob")
        .execute_batch("DELETE FROM audit_heads")
        .unwrap();
    assert_eq!(verify(&env, false).await, None, "locally it looks whole");
    assert_eq!(
        verify(&env, true).await,
        Some(AuditBreak::Truncated { seq: head })
    );

    // A consistent rewrite (every hash recomputed by someone with the key)
    // of a fresh trail is caught by the countersigned hash.
    let (env, head) = trail().await;
    let bob = env.reopen("bob");
    let entries = bob.audit_entries(0, 1000).await.unwrap();
    bob.close();
    rewrite_chain(&env, &entries, 1, "edited");
    assert_eq!(
        verify(&env, false).await,
        Some(AuditBreak::Rewritten { seq: head })
    );

    // And the relay refuses to countersign a shorter head afterwards.
    let bob = env.reopen("bob");
    env.client_db("bob")
        .execute_batch("DELETE FROM audit_heads")
        .unwrap();
    assert!(bob.countersign_audit().await.is_err());
    bob.close();
}

/// Replaces entry `seq`'s detail and recomputes every hash after it, as the
/// holder of the database key could.
fn rewrite_chain(env: &Env, entries: &[occ_core::AuditEntry], seq: u64, detail: &str) {
    use occ_protocol::codec::Writer;
    use sha2::Digest;
    let db = env.client_db("bob");
    let mut prev = [0u8; 32];
    for e in entries {
        let d = if e.seq == seq {
            detail
        } else {
            e.detail.as_str()
        };
        let mut w = Writer::new();
        w.raw(b"occ/v1/audit")
            .u64(e.seq)
            .u64(e.at_ms as u64)
            .var_bytes(e.kind.as_bytes())
            .option(e.thread_id.as_ref(), |w, t| {
                w.var_bytes(t.as_bytes());
            })
            .option(e.message_id.as_ref(), |w, m| {
                w.var_bytes(m.as_bytes());
            })
            .var_bytes(e.subject.as_bytes())
            .var_bytes(d.as_bytes())
            .raw(&prev);
        let h: [u8; 32] = sha2::Sha256::digest(w.as_slice()).into();
        db.execute(
            "UPDATE audit SET detail = ?1, prev = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![d, &prev[..], &h[..], e.seq as i64],
        )
        .unwrap();
        prev = h;
    }
}

/// The relay operator cannot make a device's trail look cut: a head it did
/// not sign (here, its stored head moved forward) is refused as untrusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_countersigned_head_the_relay_key_did_not_sign_is_refused() {
    let (env, head) = trail().await;
    common::relay_db_rw(&env.relay_dir)
        .execute("UPDATE audit_heads SET seq = ?1", [head as i64 + 100])
        .unwrap();
    let bob = env.reopen("bob");
    assert!(matches!(
        bob.audit_verify(true).await,
        Err(occ_core::Error::Untrusted { .. })
    ));
    assert_eq!(bob.audit_verify(false).await.unwrap().broken, None);
    bob.close();
}

/// A relay that countersigns another head than the one asked (validly
/// signed, one entry older) is not believed: nothing is kept as
/// countersigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_countersignature_for_another_head_than_asked_is_refused() {
    let env = Env::start().await;
    let alice = env.client("alice").await;
    alice
        .send(to("bob-nobody"), b"x".to_vec(), 600, None)
        .await
        .ok();
    for hook in [
        &env.hooks.countersign_older_head,
        &env.hooks.countersign_other_hash,
    ] {
        hook.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(
            alice.countersign_audit().await,
            Err(occ_core::Error::Untrusted { .. })
        ));
        hook.store(false, std::sync::atomic::Ordering::SeqCst);
    }
    let r = alice.audit_verify(false).await.unwrap();
    assert_eq!(r.countersigned_seq, None);
}
