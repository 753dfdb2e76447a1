//! The difference between what a source holds in the store and what it should hold.

use std::collections::{BTreeMap, HashMap};

use super::model::{AssetKey, AssetRecord};

/// An asset whose content changed: the new record and the digest it replaces.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub record: AssetRecord,
    pub previous_digest: String,
}

/// An asset that is no longer in the source, with the digest it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub key: AssetKey,
    pub previous_digest: String,
}

/// Added, updated and removed assets, each list sorted by key; `unchanged` only counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diff {
    pub added: Vec<AssetRecord>,
    pub updated: Vec<Update>,
    pub removed: Vec<Removal>,
    pub unchanged: usize,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }

    pub fn changes(&self) -> usize {
        self.added.len() + self.updated.len() + self.removed.len()
    }
}

/// Compares the stored digests of a source (key → digest) with the desired records.
///
/// Desired keys must be unique (the validator guarantees it); a repeated key counts once,
/// the last one winning. The records move into the diff: a 100,000-asset ingest used to
/// clone each one and drop the originals, a third of the refresh's own CPU.
pub fn diff(stored: &HashMap<AssetKey, String>, desired: Vec<AssetRecord>) -> Diff {
    let order = unique_key_order(&desired);
    let mut removed: Vec<Removal> = stored
        .iter()
        .filter(|(key, _)| order.binary_search_by(|(k, _)| k.cmp(key)).is_err())
        .map(|(key, digest)| Removal {
            key: key.clone(),
            previous_digest: digest.clone(),
        })
        .collect();
    removed.sort_by(|a, b| a.key.cmp(&b.key));

    let mut slots: Vec<Option<AssetRecord>> = desired.into_iter().map(Some).collect();
    let mut out = Diff {
        // At least this many are new (all of them on a first load): a vector of 100,000
        // records grown by doubling is reallocated and copied 17 times.
        added: Vec::with_capacity(order.len().saturating_sub(stored.len())),
        removed,
        ..Diff::default()
    };
    for (key, i) in order {
        // Each index is in `order` once, so its slot is still full.
        let Some(record) = slots[i].take() else {
            continue;
        };
        match stored.get(&key) {
            None => out.added.push(record),
            Some(previous) if previous == record.digest() => out.unchanged += 1,
            Some(previous) => out.updated.push(Update {
                previous_digest: previous.clone(),
                record,
            }),
        }
    }
    out
}

/// Each key of `records` with the index of its record, in key order: of records sharing a
/// key, the last. Sorts keys and indices, not records, which are large to move.
fn unique_key_order(records: &[AssetRecord]) -> Vec<(AssetKey, usize)> {
    let mut order: Vec<(AssetKey, usize)> = records.iter().map(AssetRecord::key).zip(0..).collect();
    // (key, index) pairs are distinct: records sharing a key end up in their input order.
    order.sort_unstable();
    order.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = later.1;
        }
        same
    });
    order
}

/// Applies a diff to a full set of records, as the store does; the result is sorted by key.
pub fn apply(diff: &Diff, current: Vec<AssetRecord>) -> Vec<AssetRecord> {
    let mut by_key: BTreeMap<AssetKey, AssetRecord> =
        current.into_iter().map(|r| (r.key(), r)).collect();
    for removal in &diff.removed {
        by_key.remove(&removal.key);
    }
    for update in &diff.updated {
        by_key.insert(update.record.key(), update.record.clone());
    }
    for added in &diff.added {
        by_key.insert(added.key(), added.clone());
    }
    by_key.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        catalog::{Asset, AssetKind},
        fixtures::asset,
    };
    use proptest::prelude::*;

    fn record(name: &str, version: &str, description: &str) -> AssetRecord {
        AssetRecord::from_asset(Asset {
            description: Some(description.into()),
            ..asset(AssetKind::Model, name, version)
        })
    }

    fn digests(records: &[AssetRecord]) -> HashMap<AssetKey, String> {
        records
            .iter()
            .map(|r| (r.key(), r.digest().to_owned()))
            .collect()
    }

    #[test]
    fn classifies_added_updated_removed_unchanged() {
        let old = vec![
            record("a", "1", "x"),
            record("b", "1", "x"),
            record("c", "1", "x"),
        ];
        let new = vec![
            record("a", "1", "x"),
            record("b", "1", "changed"),
            record("d", "1", "x"),
        ];
        let d = diff(&digests(&old), new);
        assert_eq!(d.unchanged, 1);
        assert_eq!(d.added.iter().map(|r| r.name()).collect::<Vec<_>>(), ["d"]);
        assert_eq!(d.updated.len(), 1);
        assert_eq!(d.updated[0].record.name(), "b");
        assert_eq!(d.updated[0].previous_digest, old[1].digest());
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].key.name, "c");
    }

    #[test]
    fn identical_sets_give_an_empty_diff() {
        let set = vec![record("a", "1", "x"), record("a", "2", "x")];
        let d = diff(&digests(&set), set.clone());
        assert!(d.is_empty());
        assert_eq!(d.unchanged, 2);
    }

    fn arb_set() -> impl Strategy<Value = Vec<AssetRecord>> {
        // Small name and version alphabets so that sets overlap often.
        proptest::collection::btree_map(("[a-e]", "[1-3]"), "[xyz]{0,2}", 0..12).prop_map(|m| {
            m.into_iter()
                .map(|((n, v), d)| record(&n, &v, &d))
                .collect()
        })
    }

    #[test]
    fn a_repeated_key_counts_once_and_the_last_one_wins() {
        let stored = digests(&[record("b", "1", "old")]);
        let desired = vec![
            record("c", "1", "first"),
            record("b", "1", "first"),
            record("a", "1", "x"),
            record("c", "1", "last"),
            record("b", "1", "last"),
        ];
        let d = diff(&stored, desired);
        let added: Vec<_> = d
            .added
            .iter()
            .map(|r| (r.name(), r.fields().description.as_deref()))
            .collect();
        assert_eq!(added, [("a", Some("x")), ("c", Some("last"))]);
        assert_eq!(d.updated.len(), 1);
        assert_eq!(
            d.updated[0].record.fields().description.as_deref(),
            Some("last")
        );
        assert!(d.removed.is_empty());
    }

    /// The diff as it was first written, over a `BTreeMap` of the desired records: the
    /// reference the index-sorting one must agree with.
    fn reference_diff(stored: &HashMap<AssetKey, String>, desired: Vec<AssetRecord>) -> Diff {
        let desired: BTreeMap<AssetKey, AssetRecord> =
            desired.into_iter().map(|r| (r.key(), r)).collect();
        let mut out = Diff::default();
        for (key, record) in &desired {
            match stored.get(key) {
                None => out.added.push(record.clone()),
                Some(previous) if previous == record.digest() => out.unchanged += 1,
                Some(previous) => out.updated.push(Update {
                    record: record.clone(),
                    previous_digest: previous.clone(),
                }),
            }
        }
        let mut removed: Vec<Removal> = stored
            .iter()
            .filter(|(key, _)| !desired.contains_key(key))
            .map(|(key, digest)| Removal {
                key: key.clone(),
                previous_digest: digest.clone(),
            })
            .collect();
        removed.sort_by(|a, b| a.key.cmp(&b.key));
        out.removed = removed;
        out
    }

    fn arb_list() -> impl Strategy<Value = Vec<AssetRecord>> {
        // Unsorted, with repeated keys, over all three kinds.
        let kind = prop_oneof![
            Just(AssetKind::Model),
            Just(AssetKind::McpServer),
            Just(AssetKind::Agent)
        ];
        proptest::collection::vec((kind, "[a-d]", "[1-2]", "[xyz]{0,2}"), 0..16).prop_map(|v| {
            v.into_iter()
                .map(|(kind, n, v, d)| {
                    AssetRecord::from_asset(Asset {
                        description: Some(d),
                        ..asset(kind, &n, &v)
                    })
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference_on_unsorted_lists_with_repeats(a in arb_list(), b in arb_list()) {
            let stored = reference_diff(&HashMap::new(), a).added;
            prop_assert_eq!(diff(&digests(&stored), b.clone()), reference_diff(&digests(&stored), b));
        }

        #[test]
        fn apply_of_diff_turns_a_into_b(a in arb_set(), b in arb_set()) {
            let d = diff(&digests(&a), b.clone());
            let mut expected = b;
            expected.sort_by_key(|r| r.key());
            prop_assert_eq!(apply(&d, a.clone()), expected);
            prop_assert_eq!(d.unchanged + d.added.len() + d.updated.len(), apply(&d, a).len());
        }
    }
}
