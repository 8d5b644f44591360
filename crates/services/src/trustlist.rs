//! Trust-list distribution (P.XO.03.TRN.002/003): the publisher (the EEC node) sends each new
//! signed list to its subscribers and answers their requests; a subscriber asks when it holds
//! no valid list or its list runs out within 14 days, and has its node install what verifies
//! against the pinned signer (never an older or a forged list).

use adapter::{Adapter, Clock, InboxMessage, TrustListHoldings};
use tokio::sync::watch;

use crate::{Config, Trn, submission};

const TRN_REQUEST: Trn = Trn {
    process: "P.XO.03",
    procedure: "P.XO.03.PRC.001",
    code: "P.XO.03.TRN.002",
};
const MSG_REQUEST: &str = "P.XO.03.MSG.002";
const MSG_LIST: &str = "P.XO.03.MSG.003";
const TRN_NOTICE: Trn = Trn {
    process: "P.XO.03",
    procedure: "P.XO.03.PRC.001",
    code: "P.XO.03.TRN.003",
};
const MSG_NOTICE: &str = "P.XO.03.MSG.004";

/// Within this many days of its end a list is replaced, and the operator warned daily.
const RENEW_DAYS: i64 = 14;

fn expires_soon(next_update: time::OffsetDateTime, now: time::OffsetDateTime) -> bool {
    next_update - now <= time::Duration::days(RENEW_DAYS)
}

/// Runs the service until `stop`.
pub async fn run<A: Adapter, H: TrustListHoldings>(
    adapter: A,
    list: H,
    cfg: Config,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let me = cfg.me.clone();
    let mut next_ask = tokio::time::Instant::now();
    let mut sent: Option<u64> = None;
    let mut warned_day = None;
    while !*stop.borrow() {
        let now = clock();
        // A newer list put in place on disk (how the publisher's operator issues one) is
        // taken into use here too: receipts and revocations follow it, not only subscribers.
        if let Some((version, xml)) = list.signed()
            && list.current().ok().is_none_or(|(held, _)| held < version)
            && let Err(e) = list.install(&xml)
        {
            tracing::warn!(version, error = %e, "the trust list on disk was not taken into use");
        }
        if !cfg.subscribers.is_empty()
            && let Some((version, xml)) = list.signed()
            && sent != Some(version)
        {
            let mut all = true;
            for s in &cfg.subscribers {
                let sub = submission(s, &TRN_NOTICE, MSG_NOTICE, xml.clone(), None);
                if let Err(e) = adapter.send(&sub).await {
                    tracing::warn!(subscriber = %s, error = %e, "trust list not sent");
                    all = false;
                }
            }
            if all {
                sent = Some(version);
            }
        }
        let current = list.current();
        if let Some(p) = &cfg.publisher
            && tokio::time::Instant::now() >= next_ask
        {
            next_ask = tokio::time::Instant::now() + cfg.refresh;
            let have = current
                .as_ref()
                .ok()
                .filter(|(_, next)| !expires_soon(*next, now));
            if have.is_none() {
                let body = format!("<tl:TrustListRequest xmlns:tl=\"{}\"/>", ttp::TL_NS);
                if let Err(e) = adapter
                    .send(&submission(p, &TRN_REQUEST, MSG_REQUEST, body, None))
                    .await
                {
                    tracing::warn!(publisher = %p, error = %e, "trust list not requested");
                }
            }
        }
        // Well before it runs out, once a day, the operator hears of it.
        if let Ok((version, next_update)) = &current
            && expires_soon(*next_update, now)
            && warned_day != Some(now.date())
        {
            warned_day = Some(now.date());
            tracing::warn!(version, next_update = %next_update, "the trust list expires within 14 days");
        }
        let Some(items) = crate::next_items(&adapter, &me, &mut stop).await else {
            break;
        };
        for it in items {
            handle(&adapter, &list, &cfg, &it).await;
            crate::ack(&adapter, &me, &it).await;
        }
    }
}

async fn handle<A: Adapter, H: TrustListHoldings>(
    adapter: &A,
    list: &H,
    cfg: &Config,
    it: &InboxMessage,
) {
    let Ok(env) = crate::parse(it) else {
        return;
    };
    let envelope::Body::Document(doc) = &env.body else {
        return; // signals about our own messages
    };
    let code = env
        .header
        .cp_action()
        .and_then(|a| a.message_code().map(str::to_owned));
    match code.as_deref() {
        Some(MSG_REQUEST) if !cfg.subscribers.is_empty() => {
            let Some((_, xml)) = list.signed() else {
                tracing::warn!(from = %it.from, "asked for the trust list, but none here verifies");
                return;
            };
            let answer = submission(&it.from, &TRN_REQUEST, MSG_LIST, xml, Some(it));
            if let Err(e) = adapter.send(&answer).await {
                tracing::warn!(to = %it.from, error = %e, "trust list not sent");
            }
        }
        Some(MSG_LIST | MSG_NOTICE) if cfg.publisher.as_deref() == Some(it.from.as_str()) => {
            match list.install(doc) {
                Ok(v) => tracing::debug!(version = v, "trust list received"),
                Err(e) => {
                    tracing::warn!(error = %e, "a trust list from the publisher was refused; the last valid one stays")
                }
            }
        }
        _ => tracing::warn!(from = %it.from, "unexpected message to the trust service"),
    }
}
