//! The adapter API over HTTP: [`HttpAdapter`] implements [`Adapter`] and [`Ttp`] for an IS
//! anywhere, with one bearer token per participant; plus the evidence container, the stored
//! envelope and RFC 3161 time stamps. Nothing here bypasses the API.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use crate::wire::{TIMESTAMP_HEADER, TIMESTAMP_PROOF_HEADER};
use crate::{Adapter, AdapterError, InboxPage, ReceiptBody, Stamp, StatusBody, Submission, Ttp};

impl From<reqwest::Error> for AdapterError {
    fn from(e: reqwest::Error) -> Self {
        AdapterError::Http(e.to_string())
    }
}

#[derive(Clone)]
pub struct HttpAdapter {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl HttpAdapter {
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
        HttpAdapter {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }

    async fn check(r: reqwest::Response) -> Result<reqwest::Response, AdapterError> {
        if r.status().is_success() {
            Ok(r)
        } else {
            Err(AdapterError::Api {
                status: r.status().as_u16(),
                body: r.text().await.unwrap_or_default(),
            })
        }
    }

    /// The evidence container of a message this participant sent or received.
    pub async fn evidence(&self, message_id: &str) -> Result<Vec<u8>, AdapterError> {
        let r = self
            .http
            .get(format!("{}/v1/messages/{message_id}/evidence", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(Self::check(r).await?.bytes().await?.to_vec())
    }

    /// RFC 3161: a DER `TimeStampReq` to the node's authority, its DER `TimeStampResp` back.
    pub async fn time_stamp(&self, request: &[u8]) -> Result<Vec<u8>, AdapterError> {
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
}

impl Adapter for HttpAdapter {
    async fn send(&self, m: &Submission) -> Result<ReceiptBody, AdapterError> {
        let r = self
            .http
            .post(format!("{}/v1/messages", self.base))
            .bearer_auth(&self.token)
            .json(m)
            .send()
            .await?;
        Ok(Self::check(r).await?.json().await?)
    }

    async fn send_envelope(&self, xml: &str) -> Result<String, AdapterError> {
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

    async fn inbox(
        &self,
        after: i64,
        limit: i64,
        wait_secs: u64,
    ) -> Result<InboxPage, AdapterError> {
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

    async fn ack(&self, message_id: &str) -> Result<bool, AdapterError> {
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

    async fn status(&self, message_id: &str) -> Result<StatusBody, AdapterError> {
        let r = self
            .http
            .get(format!("{}/v1/messages/{message_id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(Self::check(r).await?.json().await?)
    }

    async fn envelope(&self, message_id: &str) -> Result<String, AdapterError> {
        let r = self
            .http
            .get(format!("{}/v1/messages/{message_id}/envelope", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(Self::check(r).await?.text().await?)
    }
}

impl Ttp for HttpAdapter {
    async fn receipt(
        &self,
        document: &str,
        moment: Option<&str>,
    ) -> Result<(String, Option<Stamp>), AdapterError> {
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
        let stamp = match (header(TIMESTAMP_HEADER), header(TIMESTAMP_PROOF_HEADER)) {
            (Some(t), Some(proof)) => Some(Stamp {
                token: base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .map_err(|e| AdapterError::Protocol(format!("time stamp: {e}")))?,
                proof,
            }),
            _ => None,
        };
        Ok((resp.text().await?, stamp))
    }
}
