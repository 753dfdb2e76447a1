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
/// the last one winning.
pub fn diff(stored: &HashMap<AssetKey, String>, desired: Vec<AssetRecord>) -> Diff {
    let desired: BTreeMap<AssetKey, AssetRecord> =
        desired.into_iter().map(|r| (r.key(), r)).collect();
    let mut out = Diff::default();
    for (key, record) in desired.iter() {
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

    proptest! {
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
