//! Templates kept across a restart: a bounded [`TemplateStore`] that the NetFlow v9 / IPFIX
//! parser writes every template it learns through to, and reads from when data arrives for a
//! template its own cache lacks. The daemon saves a [`TemplateStash::snapshot`] beside its
//! learned state and loads it on start, so that data sent after a restart is decoded at once
//! instead of waiting (held, or dropped) for the exporter's next template refresh.
//!
//! Keys are the parser's: the exporter's scope (`ipfix:ADDR:PORT/DOMAIN`, `v9:ADDR:PORT/SOURCE`),
//! the template kind and its id; payloads are the parser's own versioned encoding, opaque
//! here. A payload the parser cannot decode (another version, damage) is dropped by the parser
//! and the slot treated as a miss.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use netflow_parser::template_store::{
    TemplateKind, TemplateStore, TemplateStoreError, TemplateStoreKey,
};

/// Templates kept at most (every exporter together).
pub const MAX_TEMPLATES: usize = 16_384;
/// Largest encoded template kept, bytes (512 fields of 8 bytes and a header).
pub const MAX_TEMPLATE_BYTES: usize = 8_192;

/// One saved template: where it belongs and the parser's encoding of it (hex).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedTemplate {
    /// The exporter's scope, as the parser names it.
    pub scope: String,
    /// `v9_data`, `v9_options`, `ipfix_data`, `ipfix_options`, `ipfix_v9_data` or
    /// `ipfix_v9_options`.
    pub kind: String,
    /// Template id.
    pub id: u16,
    /// The parser's encoding, hex.
    pub wire: String,
}

const KINDS: [(TemplateKind, &str); 6] = [
    (TemplateKind::V9Data, "v9_data"),
    (TemplateKind::V9Options, "v9_options"),
    (TemplateKind::IpfixData, "ipfix_data"),
    (TemplateKind::IpfixOptions, "ipfix_options"),
    (TemplateKind::IpfixV9Data, "ipfix_v9_data"),
    (TemplateKind::IpfixV9Options, "ipfix_v9_options"),
];

fn kind_name(k: TemplateKind) -> Option<&'static str> {
    KINDS.iter().find(|(x, _)| *x == k).map(|(_, n)| *n)
}

fn kind_of(name: &str) -> Option<TemplateKind> {
    KINDS.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 2 * MAX_TEMPLATE_BYTES {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The bounded template store shared by every collector of a process.
#[derive(Debug, Default)]
pub struct TemplateStash {
    map: Mutex<HashMap<TemplateStoreKey, Vec<u8>>>,
    /// Bumped at every change, so that a caller saves only what changed.
    generation: AtomicU64,
    /// Templates not kept: over [`MAX_TEMPLATES`] or [`MAX_TEMPLATE_BYTES`], or unreadable
    /// entries of a saved file.
    refused: AtomicU64,
}

impl TemplateStash {
    /// An empty stash, shareable with collectors.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn map(&self) -> MutexGuard<'_, HashMap<TemplateStoreKey, Vec<u8>>> {
        // A panic elsewhere while the lock was held leaves a map that is still whole.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Templates held.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes so far (compare two readings to know whether to save).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Templates refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn insert(&self, key: TemplateStoreKey, value: Vec<u8>) -> bool {
        let mut m = self.map();
        if value.len() > MAX_TEMPLATE_BYTES || (m.len() >= MAX_TEMPLATES && !m.contains_key(&key)) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if m.get(&key) != Some(&value) {
            m.insert(key, value);
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Every template, sorted (scope, kind, id), for the state file.
    pub fn snapshot(&self) -> Vec<SavedTemplate> {
        let mut out: Vec<SavedTemplate> = self
            .map()
            .iter()
            .filter_map(|(k, v)| {
                Some(SavedTemplate {
                    scope: k.scope.to_string(),
                    kind: kind_name(k.kind)?.to_string(),
                    id: k.template_id,
                    wire: hex(v),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.scope, &a.kind, a.id).cmp(&(&b.scope, &b.kind, b.id)));
        out
    }

    /// Take saved templates back (within the caps); returns how many were taken. Entries of
    /// an unknown kind or with an unreadable payload are counted as refused.
    pub fn restore(&self, saved: Vec<SavedTemplate>) -> usize {
        let mut taken = 0;
        for s in saved {
            match (kind_of(&s.kind), unhex(&s.wire)) {
                (Some(kind), Some(wire)) => {
                    if self.insert(TemplateStoreKey::new(s.scope, kind, s.id), wire) {
                        taken += 1;
                    }
                }
                _ => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        taken
    }
}

impl TemplateStore for TemplateStash {
    fn get(&self, key: &TemplateStoreKey) -> Result<Option<Vec<u8>>, TemplateStoreError> {
        Ok(self.map().get(key).cloned())
    }

    fn put(&self, key: &TemplateStoreKey, value: &[u8]) -> Result<(), TemplateStoreError> {
        self.insert(key.clone(), value.to_vec());
        Ok(())
    }

    fn remove(&self, key: &TemplateStoreKey) -> Result<(), TemplateStoreError> {
        if self.map().remove(key).is_some() {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_templates_come_back_and_the_caps_hold() {
        let s = TemplateStash::new();
        s.put(
            &TemplateStoreKey::new("ipfix:192.0.2.1:4000/1", TemplateKind::IpfixData, 256),
            &[1, 2, 0xab],
        )
        .ok();
        s.put(
            &TemplateStoreKey::new("v9:192.0.2.2:4000/0", TemplateKind::V9Options, 300),
            &[9],
        )
        .ok();
        assert_eq!(s.generation(), 2);
        // The same again changes nothing.
        s.put(
            &TemplateStoreKey::new("v9:192.0.2.2:4000/0", TemplateKind::V9Options, 300),
            &[9],
        )
        .ok();
        assert_eq!(s.generation(), 2);
        let snap = s.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].wire, "0102ab");
        let back = TemplateStash::new();
        assert_eq!(back.restore(snap.clone()), 2);
        assert_eq!(back.snapshot(), snap);
        let key = TemplateStoreKey::new("ipfix:192.0.2.1:4000/1", TemplateKind::IpfixData, 256);
        assert_eq!(back.get(&key).ok().flatten(), Some(vec![1, 2, 0xab]));
        // Hostile entries: unknown kind, odd or non-hex payloads, too long: refused, counted.
        let bad = |kind: &str, wire: String| SavedTemplate {
            scope: "x".into(),
            kind: kind.into(),
            id: 1,
            wire,
        };
        let n = back.restore(vec![
            bad("nonsense", "00".into()),
            bad("v9_data", "0".into()),
            bad("v9_data", "zz".into()),
            bad("v9_data", "00".repeat(MAX_TEMPLATE_BYTES + 1)),
        ]);
        assert_eq!((n, back.refused(), back.len()), (0, 4, 2));
        // The count cap.
        let full = TemplateStash::new();
        for i in 0..MAX_TEMPLATES + 10 {
            let scope = format!("ipfix:192.0.2.{}:1/{}", i % 200, i / 200);
            full.put(
                &TemplateStoreKey::new(scope, TemplateKind::IpfixData, 256),
                &[0],
            )
            .ok();
        }
        assert_eq!((full.len(), full.refused()), (MAX_TEMPLATES, 10));
    }
}
