//! Gathering an export under the store: the messages in scope, their
//! attachments, and every rule (lock, class policy, encryption required,
//! data-loss prevention) checked before a byte is written.

use base64::Engine as _;

use super::dlp::{Dlp, DlpAction, Findings};
use super::{ExportOptions, ExportScope, Plan, Record, RecordAttachment, safe_name};
use crate::audit::AuditKind;
use crate::error::{Error, Result};
use crate::store::audit::{NewEntry, append_in};
use crate::store::{SecurityEventKind, StoredMessage};
use crate::sync::Local;

impl Local {
    fn refuse_export(&mut self, reason: String) -> Error {
        match self.store.record_security_event(
            SecurityEventKind::PolicyDenied,
            &format!("export: {reason}"),
        ) {
            Ok(_) => Error::denied(reason),
            Err(e) => e.into(),
        }
    }

    /// Checks every rule and gathers what the export will hold.
    pub(crate) fn export_plan(
        &mut self,
        scope: &ExportScope,
        options: &ExportOptions,
    ) -> Result<Plan> {
        self.check_unlocked()?;
        let user = self.user()?;
        let device = self.account.device_id().to_hex();
        let (messages, title): (Vec<StoredMessage>, String) = match scope {
            ExportScope::Message { id } => {
                let m = self.store.message(id)?;
                let t = m.thread_id.clone();
                (vec![m], t)
            }
            ExportScope::Thread { id } => {
                let mut all = self.store.thread_messages(id, 10_000, None)?;
                if all.is_empty() {
                    return Err(Error::NotFound {
                        what: format!("live messages in thread {id}"),
                    });
                }
                all.reverse();
                (all, id.clone())
            }
        };
        if self
            .policy
            .as_ref()
            .is_some_and(|p| p.export_requires_encryption)
            && options.encryption == super::ExportEncryption::None
        {
            return Err(
                self.refuse_export("the organisation requires exports to be encrypted".into())
            );
        }
        let rules = self
            .policy
            .as_ref()
            .and_then(|p| p.dlp.clone())
            .or_else(|| options.dlp.clone());
        let dlp = rules
            .as_ref()
            .map(Dlp::new)
            .transpose()
            .map_err(Error::invalid)?;
        let mut records = Vec::with_capacity(messages.len());
        let mut sources = Vec::new();
        let mut found = Findings::default();
        for m in &messages {
            let attachment = self.store.attachments_of(&m.id)?.into_iter().next();
            let class = crate::policy::class_of(m.urgent, attachment.is_some());
            if let Err(reason) = crate::policy::export_allowed(self.policy.as_ref(), class, &device)
            {
                return Err(self.refuse_export(reason));
            }
            let (mut text, body_base64) = match std::str::from_utf8(&m.body) {
                Ok(t) => (t.to_string(), None),
                Err(_) => (
                    String::new(),
                    Some(base64::engine::general_purpose::STANDARD.encode(&m.body)),
                ),
            };
            let mut name = attachment.as_ref().map(|a| a.name.clone());
            if let Some(d) = &dlp {
                let (f, redacted) = d.scan(&text);
                found.add(&f);
                text = redacted;
                if let Some(n) = &name {
                    let (f, redacted) = d.scan(n);
                    found.add(&f);
                    name = Some(redacted);
                }
            }
            let attachment = match attachment {
                Some(a) => {
                    let path = (a.downloaded && !options.skip_attachments)
                        .then(|| safe_name(sources.len(), name.as_deref().unwrap_or("file")));
                    if let Some(p) = &path {
                        sources.push((p.clone(), self.store.open_attachment(&a.id)?));
                    }
                    Some(RecordAttachment {
                        name: name.unwrap_or_default(),
                        mime: a.mime,
                        size: a.size,
                        path,
                    })
                }
                None => None,
            };
            records.push(Record {
                id: m.id.clone(),
                thread_id: m.thread_id.clone(),
                sender: m.sender.clone(),
                outgoing: m.outgoing,
                sent_ms: m.sent_ms,
                received_ms: m.received_ms,
                ttl_expiry_ms: m.ttl_expiry_ms,
                urgent: m.urgent,
                text,
                body_base64,
                attachment,
            });
        }
        let redactions = found.cards + found.patterns;
        if found.any() && dlp.as_ref().is_some_and(|d| d.action() == DlpAction::Block) {
            return Err(self.refuse_export(format!(
                "data-loss prevention found {} card number(s) and {} pattern match(es)",
                found.cards, found.patterns
            )));
        }
        Ok(Plan {
            scope: scope.clone(),
            title,
            user,
            device_id: device,
            created_ms: self.store.now_ms(),
            records,
            sources,
            redactions,
        })
    }

    /// Records a finished export in the audit trail.
    pub(crate) fn exported(&mut self, plan: &Plan, encryption: Option<&str>) -> Result<()> {
        let now = self.store.now_ms();
        let detail = format!(
            "messages={} attachments={} redactions={} encryption={}",
            plan.records.len(),
            plan.sources.len(),
            plan.redactions,
            encryption.unwrap_or("none")
        );
        let entry = NewEntry::of(AuditKind::Exported).detail(&detail);
        let entry = match &plan.scope {
            ExportScope::Message { id } => entry.thread(&plan.title).message(id),
            ExportScope::Thread { id } => entry.thread(id),
        };
        let tx = self.store.conn.transaction()?;
        append_in(&tx, now, &entry)?;
        tx.commit()?;
        Ok(())
    }
}
