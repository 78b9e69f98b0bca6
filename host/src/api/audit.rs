//! The writing side of the audit log: entries reach the store through the
//! group-committing writer's queue, so a request never waits on a database
//! write of its own, and the bots' commits share the writer with them.
//!
//! An authenticated call's entry waits for room in the queue (it is never
//! dropped); a refused anonymous call's entry is queued only if there is
//! room (and the failed-authentication limit bounds how many there are).

use crate::store::{AuditEntry, Record, Writer};

pub struct AuditTrail {
    writer: Writer,
}

impl AuditTrail {
    pub fn new(writer: Writer) -> Self {
        Self { writer }
    }

    /// Keep an authenticated call's entry.
    pub async fn record(&self, entry: AuditEntry) {
        if !self.writer.submit(vec![Record::Audit(entry)]).await {
            tracing::error!("audit entry not written: the store's writer has stopped");
        }
    }

    /// Keep a refused anonymous call's entry, if the queue has room.
    pub fn try_record(&self, entry: AuditEntry) {
        self.writer.try_submit(vec![Record::Audit(entry)]);
    }
}
