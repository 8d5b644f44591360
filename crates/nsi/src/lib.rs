//! Reference data of the Union (НСИ): directories and classifiers whose items have names per
//! language, attributes, an optional parent and validity dates; crosswalks ("transition keys")
//! between them; import from CSV, JSON and XML with every problem reported at once; canonical
//! content hashes for immutable versions; diffs; and an in-memory index answering "as of a
//! date" lookups, searches in any language and the allocation-free validity check that
//! e-document validation uses.
//!
//! No I/O: callers hand in bytes and get values; storage and distribution live elsewhere.

pub mod diff;
pub mod format;
pub mod index;
pub mod model;

pub use index::{Index, ResourceIndex, Translation};
pub use model::{Content, Crosswalk, Item, Mapping, Problem, Relation, Resource};
