//! What the reference-data read endpoints have already worked out, kept within a budget:
//! decoded versions (a few) and finished answers (exports and diffs, by bytes). A stored
//! version never changes once published, so an entry keyed by its hash is never stale; the
//! least recently used entry goes first when the budget is full.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use nsi::model::Content;

/// A least-recently-used map from keys to values, each with a weight, within a total weight.
/// Linear in its entries, which stay few (tens): simpler than a linked map, and as fast.
struct Lru<V> {
    entries: VecDeque<(String, V, usize)>,
    weight: usize,
    budget: usize,
}

impl<V: Clone> Lru<V> {
    fn new(budget: usize) -> Lru<V> {
        Lru {
            entries: VecDeque::new(),
            weight: 0,
            budget,
        }
    }

    fn get(&mut self, key: &str) -> Option<V> {
        let i = self.entries.iter().position(|(k, _, _)| k == key)?;
        let e = self.entries.remove(i)?;
        let v = e.1.clone();
        self.entries.push_front(e);
        Some(v)
    }

    fn put(&mut self, key: String, value: V, weight: usize) {
        // Something larger than the whole budget is answered but not kept.
        if weight > self.budget {
            return;
        }
        if let Some(i) = self.entries.iter().position(|(k, _, _)| *k == key)
            && let Some((_, _, w)) = self.entries.remove(i)
        {
            self.weight -= w;
        }
        while self.weight + weight > self.budget {
            match self.entries.pop_back() {
                Some((_, _, w)) => self.weight -= w,
                None => break,
            }
        }
        self.weight += weight;
        self.entries.push_front((key, value, weight));
    }
}

/// The node's cache for reference-data reads.
pub struct ReadCache {
    decoded: Mutex<Lru<Arc<Content>>>,
    answers: Mutex<Lru<Bytes>>,
}

impl ReadCache {
    /// Keeps up to `versions` decoded versions and `answer_bytes` of finished answers.
    pub fn new(versions: usize, answer_bytes: usize) -> ReadCache {
        ReadCache {
            decoded: Mutex::new(Lru::new(versions)),
            answers: Mutex::new(Lru::new(answer_bytes)),
        }
    }

    /// The decoded version whose hash is `sha256`, if kept.
    pub fn decoded(&self, sha256: &str) -> Option<Arc<Content>> {
        self.decoded.lock().ok()?.get(sha256)
    }

    pub fn keep_decoded(&self, sha256: &str, content: Arc<Content>) {
        if let Ok(mut c) = self.decoded.lock() {
            c.put(sha256.to_owned(), content, 1);
        }
    }

    /// A finished answer under `key` (which names the hashes it was made from), if kept.
    pub fn answer(&self, key: &str) -> Option<Bytes> {
        self.answers.lock().ok()?.get(key)
    }

    pub fn keep_answer(&self, key: String, body: Bytes) {
        if let Ok(mut c) = self.answers.lock() {
            let w = body.len();
            c.put(key, body, w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The least recently used entry goes first; an entry over the whole budget is not kept.
    #[test]
    fn least_recently_used_goes_first_within_the_budget() {
        let c = ReadCache::new(2, 10);
        for (k, n) in [("a", 4), ("b", 4)] {
            c.keep_answer(k.into(), Bytes::from(vec![0; n]));
        }
        assert!(c.answer("a").is_some());
        c.keep_answer("c".into(), Bytes::from(vec![0; 4]));
        let kept: Vec<bool> = ["a", "b", "c"]
            .iter()
            .map(|k| c.answer(k).is_some())
            .collect();
        assert_eq!(kept, [true, false, true]);
        c.keep_answer("huge".into(), Bytes::from(vec![0; 11]));
        assert!(c.answer("huge").is_none() && c.answer("a").is_some());
    }
}
