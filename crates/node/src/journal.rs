//! The node's diagnostic journal (Decision No. 5 asks every integration gateway to keep
//! diagnostic records of the exchange and pass them to the Commission): what happened to
//! messages in a period, read from the store's history by time, and on the collecting node the
//! reports of every gateway, kept per state. The journal service (`services::journal`) reaches
//! this only through [`adapter::JournalHoldings`].

use adapter::{HoldingsError, JournalRecord, JournalReport};
use store::{KeptReport, Store};

/// Records listed per report, at most: the counts say how many there were in all.
const MAX_RECORDS: i64 = 1000;

/// The `JournalHoldings` port of a node.
pub struct Holdings {
    pub(crate) store: Store,
    pub(crate) segment: String,
    pub(crate) clock: crate::Clock,
}

fn unavailable(e: impl std::fmt::Display) -> HoldingsError {
    HoldingsError::Unavailable(e.to_string())
}

impl adapter::JournalHoldings for Holdings {
    async fn journal(&self, from: i64, to: i64) -> Result<JournalReport, HoldingsError> {
        let counts = self
            .store
            .journal_counts(from, to)
            .await
            .map_err(unavailable)?;
        let records = self
            .store
            .journal_failures(from, to, MAX_RECORDS)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|r| JournalRecord {
                message_id: r.message_id,
                direction: r.direction,
                sender: r.sender,
                recipient: r.recipient,
                action: r.action,
                state: r.state,
                at: r.at,
                detail: r.detail,
            })
            .collect();
        Ok(JournalReport {
            segment: self.segment.clone(),
            from,
            to,
            counts,
            records,
        })
    }

    async fn keep(&self, report: JournalReport) -> Result<bool, HoldingsError> {
        let kept = KeptReport {
            counts: serde_json::to_string(&report.counts).map_err(unavailable)?,
            records: serde_json::to_string(&report.records).map_err(unavailable)?,
            segment: report.segment,
            period_from: report.from,
            period_to: report.to,
            received_at: crate::micros((self.clock)()),
        };
        self.store.journal_keep(kept).await.map_err(unavailable)
    }
}

/// The reports the collecting node keeps, newest first, decoded.
pub async fn reports(store: &Store, limit: i64) -> Result<Vec<JournalReport>, HoldingsError> {
    store
        .journal_reports(limit)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|k| {
            Ok(JournalReport {
                counts: serde_json::from_str(&k.counts).map_err(unavailable)?,
                records: serde_json::from_str(&k.records).map_err(unavailable)?,
                segment: k.segment,
                from: k.period_from,
                to: k.period_to,
            })
        })
        .collect()
}
