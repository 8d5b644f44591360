//! What the public portal reads of the common information resources an application keeps
//! (today the unified registry of conformity documents), so the pages know no application.

use crate::HoldingsError;
use crate::console::Answer;

/// One document of the registry, as the portal lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryEntry {
    pub doc_id: String,
    /// Alpha-2 code of the issuing state.
    pub country: String,
    pub kind: String,
    /// The official DocStatusCode (`01` valid, `02` suspended, ...).
    pub status: String,
    pub applicant: String,
    /// Product names, `; `-separated.
    pub products: String,
    /// `YYYY-MM-DD`, or empty.
    pub start_date: String,
    pub valid_until: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// What to look for: words that must all be in a document's names, numbers or codes; its
/// state; its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryQuery {
    pub text: Option<String>,
    pub country: Option<String>,
    pub status: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

/// A page of a search: its documents and how many match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPage {
    pub entries: Vec<RegistryEntry>,
    pub total: i64,
}

/// One document whole: its entry, its record as registered (XML), and its statuses over time
/// (status, RFC 3339), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryDocument {
    pub entry: RegistryEntry,
    pub xml: String,
    pub history: Vec<(String, String)>,
}

/// A registry the portal shows.
pub trait Registry: Send + Sync {
    fn search(&self, q: RegistryQuery) -> Answer<'_, RegistryPage>;
    fn document<'a>(&'a self, doc_id: &'a str) -> Answer<'a, Option<RegistryDocument>>;
    /// Up to `limit` entries after `after` (by number), for downloads that stream the whole
    /// registry in pages.
    fn entries_after<'a>(&'a self, after: &'a str, limit: i64) -> Answer<'a, Vec<RegistryEntry>>;
    /// How many documents, and when the last changed (RFC 3339, empty when none).
    fn summary(&self) -> Answer<'_, (i64, String)>;
}

/// Keeps `HoldingsError` in this module's vocabulary for implementors.
pub type PortalError = HoldingsError;

/// The exchange through a node over some months, as the showcases show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExchangeStats {
    /// Messages per month (`YYYY-MM`), every month of the period, oldest first.
    pub per_month: Vec<(String, i64)>,
    /// Messages per common process, most first.
    pub per_process: Vec<(String, i64)>,
    /// Messages per (sender's segment, recipient's segment), most first.
    pub per_pair: Vec<(String, String, i64)>,
    /// Per process: processing receipts, and the median and 95th percentile of the time from
    /// the message to its receipt (milliseconds).
    pub to_prs: Vec<(String, i64, i64, i64)>,
    /// Why messages were refused or expired, and how often, most first.
    pub refusals: Vec<(String, i64)>,
}

/// The statistics of the exchange a node sees.
pub trait Statistics: Send + Sync {
    /// The last `months` calendar months, this one included.
    fn exchange(&self, months: u32) -> Answer<'_, ExchangeStats>;
}
