//! A small typed client of the adapter API, for information systems written in Rust, the demo,
//! the benchmarks and the tests. It speaks plain HTTP/JSON; nothing here bypasses the API.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{status}: {body}")]
    Api { status: u16, body: String },
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

/// The answers of the API, as the server defines them.
pub use crate::api::{
    InboxMessage, InboxPage, ReceiptBody as Receipt, StateChangeBody as StateChange,
    StatusBody as Status,
};

/// What to send: the recipient, the codes of the Action and the e-document.
pub type Outgoing = crate::Submission;

#[derive(Clone)]
pub struct AdapterClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl AdapterClient {
    pub fn new(base: &str, token: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build()
            .unwrap_or_default();
        Self::with_http(http, base, token)
    }

    /// Shares one connection pool among many clients (one per participant).
    pub fn with_http(http: reqwest::Client, base: &str, token: &str) -> Self {
        AdapterClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    async fn check(r: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if r.status().is_success() {
            Ok(r)
        } else {
            Err(ClientError::Api {
                status: r.status().as_u16(),
                body: r.text().await.unwrap_or_default(),
            })
        }
    }

    pub async fn send(&self, m: &Outgoing) -> Result<Receipt, ClientError> {
        let r = self
            .http
            .post(format!("{}/v1/messages", self.base))
            .bearer_auth(&self.token)
            .json(m)
            .send()
            .await?;
        Ok(Self::check(r).await?.json().await?)
    }

    /// Sends a full envelope; returns the RCV signal envelope.
    pub async fn send_envelope(&self, xml: &str) -> Result<String, ClientError> {
        let r = self
            .http
            .post(format!("{}/v1/soap", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/soap+xml; charset=utf-8")
            .body(xml.to_owned())
            .send()
            .await?;
        Ok(Self::check(r).await?.text().await?)
    }

    pub async fn inbox(
        &self,
        after: i64,
        limit: i64,
        wait_secs: u64,
    ) -> Result<InboxPage, ClientError> {
        let r = self
            .http
            .get(format!(
                "{}/v1/inbox?after={after}&limit={limit}&wait={wait_secs}",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(Self::check(r).await?.json().await?)
    }

    pub async fn ack(&self, message_id: &str) -> Result<bool, ClientError> {
        #[derive(Deserialize)]
        struct Ack {
            acknowledged_now: bool,
        }
        let r = self
            .http
            .post(format!("{}/v1/inbox/{message_id}/ack", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(Self::check(r).await?.json::<Ack>().await?.acknowledged_now)
    }

    /// A trusted third party receipt for a signed document, as of `moment` (RFC 3339) or now.
    pub async fn ttp_receipt(
        &self,
        document: &str,
        moment: Option<&str>,
    ) -> Result<String, ClientError> {
        Ok(self.ttp_receipt_stamped(document, moment).await?.0)
    }

    /// The receipt, and its time stamp when the node runs a time-stamp authority: the token
    /// and the receipt's path to the root it covers.
    pub async fn ttp_receipt_stamped(
        &self,
        document: &str,
        moment: Option<&str>,
    ) -> Result<(String, Option<(Vec<u8>, tsa::batch::Proof)>), ClientError> {
        use base64::Engine as _;
        let mut req = self
            .http
            .post(format!("{}/v1/ttp/receipts", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/xml; charset=utf-8")
            .body(document.to_owned());
        if let Some(m) = moment {
            req = req.query(&[("moment", m)]);
        }
        let resp = Self::check(req.send().await?).await?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let stamp = match (
            header(crate::api::TIMESTAMP_HEADER),
            header(crate::api::TIMESTAMP_PROOF_HEADER),
        ) {
            (Some(t), Some(p)) => Some((
                base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .map_err(|e| ClientError::Protocol(format!("time stamp: {e}")))?,
                tsa::batch::Proof::from_text(&p)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?,
            )),
            _ => None,
        };
        Ok((resp.text().await?, stamp))
    }

    /// The evidence container of a message this participant sent or received.
    pub async fn evidence(&self, message_id: &str) -> Result<Vec<u8>, ClientError> {
        let r = self
            .http
            .get(format!("{}/v1/messages/{message_id}/evidence", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(Self::check(r).await?.bytes().await?.to_vec())
    }

    /// RFC 3161: a DER `TimeStampReq` to the node's authority, its DER `TimeStampResp` back.
    pub async fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, ClientError> {
        let r = self
            .http
            .post(format!("{}/v1/tsa", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/timestamp-query")
            .body(request.to_vec())
            .send()
            .await?;
        Ok(Self::check(r).await?.bytes().await?.to_vec())
    }

    /// The envelope of a message this participant sent or received, as stored.
    pub async fn envelope(&self, message_id: &str) -> Result<String, ClientError> {
        let r = self
            .http
            .get(format!("{}/v1/messages/{message_id}/envelope", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(Self::check(r).await?.text().await?)
    }

    pub async fn status(&self, message_id: &str) -> Result<Status, ClientError> {
        let r = self
            .http
            .get(format!("{}/v1/messages/{message_id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(Self::check(r).await?.json().await?)
    }
}
