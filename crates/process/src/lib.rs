//! Common processes as data. A process package (`process.toml` plus XSD files) states what the
//! technological documents of a common process fix: roles, procedures, transactions with their
//! pattern and time limits, messages and the e-document structures they carry, business
//! entities and filling rules. `package` loads and checks one; `engine` runs the six
//! transaction patterns of Decision No. 5 as explicit state machines over an injectable clock.
//!
//! No I/O beyond reading a package folder; no knowledge of stores or HTTP.

pub mod engine;
pub mod package;

pub use engine::{Action, Event, Outcome, Pattern, Side, Timing, Transaction};
pub use package::{Package, PackageError};
