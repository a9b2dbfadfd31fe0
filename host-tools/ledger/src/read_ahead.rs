//! Records read ahead for a batch: a batch that will look up thousands of keys (or key prefixes) of one table reads
//! them first in one ordered range scan, and the lookups are answered from memory. Only a transaction's own writes
//! change what it reads (a write transaction holds the write lock; a read transaction sees one snapshot), so an
//! entry stays true until the transaction writes its key, which drops it.

use std::collections::{BTreeMap, HashMap};

use crate::store::Record;

/// How many rows a read-ahead scan may pass for each key it looks for: a range more crowded than that (keys far
/// apart, other records between them) is left to the lookups one by one.
pub(crate) const ROWS_PER_KEY: usize = 4;
/// Rows any read-ahead scan may pass besides, so that a small batch in a crowded range still gets its scan.
pub(crate) const SLACK_ROWS: usize = 256;

/// The most rows a read-ahead scan for `keys` keys reads.
pub(crate) fn scan_limit(keys: usize) -> usize {
    keys.saturating_mul(ROWS_PER_KEY).saturating_add(SLACK_ROWS)
}

/// What a transaction read ahead, per table: the last batch of keys and of prefixes.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    /// Per table, each key looked for and its value (`None`: no record under it).
    records: HashMap<String, HashMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Per table, each prefix looked for and its records, by key.
    scans: HashMap<String, BTreeMap<Vec<u8>, Vec<Record>>>,
}

impl ReadAhead {
    /// The value under `key` if it was read ahead: `Some(None)` when it is known that there is none.
    pub(crate) fn record(&self, table: &str, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.records.get(table)?.get(key).cloned()
    }

    /// The records under `prefix` if that prefix was read ahead.
    pub(crate) fn scan(&self, table: &str, prefix: &[u8]) -> Option<Vec<Record>> {
        self.scans.get(table)?.get(prefix).cloned()
    }

    /// Replaces the table's records read ahead by this batch's.
    pub(crate) fn set_records(&mut self, table: &str, found: HashMap<Vec<u8>, Option<Vec<u8>>>) {
        self.records.insert(table.to_owned(), found);
    }

    /// Replaces the table's prefixes read ahead by this batch's.
    pub(crate) fn set_scans(&mut self, table: &str, found: BTreeMap<Vec<u8>, Vec<Record>>) {
        self.scans.insert(table.to_owned(), found);
    }

    /// The transaction wrote (or deleted) `key`: what was read ahead under it is no longer true.
    pub(crate) fn forget(&mut self, table: &str, key: &[u8]) {
        if let Some(records) = self.records.get_mut(table) {
            records.remove(key);
        }
        if let Some(scans) = self.scans.get_mut(table) {
            // Every prefix of the key (the empty one included) may have been read ahead.
            for end in 0..=key.len() {
                scans.remove(&key[..end]);
            }
        }
    }

    /// Forgets everything: after a rollback, what was read inside the undone scope may be untrue.
    pub(crate) fn clear(&mut self) {
        self.records.clear();
        self.scans.clear();
    }
}

/// Joins a scan's rows (ordered by key, all ≥ the least key wanted) with the keys wanted (sorted, unique):
/// each key the scan covers, with its value or none. The scan covers every key up to its last row, and all of
/// them when it was `complete` (it ended before its limit).
pub(crate) fn join_records(
    wanted: &[&[u8]],
    rows: Vec<Record>,
    complete: bool,
) -> HashMap<Vec<u8>, Option<Vec<u8>>> {
    let covered_to: Option<Vec<u8>> = match complete {
        true => None,
        false => rows.last().map(|(key, _)| key.clone()),
    };
    let mut found = HashMap::with_capacity(wanted.len());
    let mut rows = rows.into_iter().peekable();
    for key in wanted {
        if covered_to.as_deref().is_some_and(|last| *key > last) {
            break;
        }
        while rows
            .next_if(|(row_key, _)| row_key.as_slice() < *key)
            .is_some()
        {}
        let value = rows
            .next_if(|(row_key, _)| row_key.as_slice() == *key)
            .map(|(_, value)| value);
        found.insert(key.to_vec(), value);
    }
    found
}

/// Groups a scan's rows (ordered by key) under the prefixes wanted (sorted, unique, none a prefix of another):
/// each prefix the scan covers whole, with its records. The scan covers a prefix whole when it was `complete`,
/// or when its last row sorts after every key under that prefix.
pub(crate) fn join_prefixes(
    wanted: &[&[u8]],
    rows: Vec<Record>,
    complete: bool,
) -> BTreeMap<Vec<u8>, Vec<Record>> {
    let last_row: Option<Vec<u8>> = match complete {
        true => None,
        false => rows.last().map(|(key, _)| key.clone()),
    };
    let mut found: BTreeMap<Vec<u8>, Vec<Record>> = wanted
        .iter()
        .filter(|prefix| match &last_row {
            None => true,
            Some(last) => !last.starts_with(prefix) && last.as_slice() > **prefix,
        })
        .map(|prefix| (prefix.to_vec(), Vec::new()))
        .collect();
    let mut index = 0;
    for (key, value) in rows {
        while wanted
            .get(index + 1)
            .is_some_and(|next| *next <= key.as_slice())
        {
            index += 1;
        }
        let Some(prefix) = wanted.get(index).filter(|p| key.starts_with(p)) else {
            continue;
        };
        if let Some(records) = found.get_mut(*prefix) {
            records.push((key, value));
        }
    }
    found
}

/// Sorted, unique and not nested (no prefix of another): prefixes a single scan can group rows under.
pub(crate) fn sorted_prefixes(prefixes: &[Vec<u8>]) -> Option<Vec<&[u8]>> {
    let mut sorted: Vec<&[u8]> = prefixes.iter().map(Vec::as_slice).collect();
    sorted.sort_unstable();
    sorted.dedup();
    // Sorted, a prefix comes right before the keys it starts: checking neighbours finds every nesting.
    let nested = sorted.windows(2).any(|pair| pair[1].starts_with(pair[0]));
    (!nested).then_some(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(keys: &[&str]) -> Vec<Record> {
        keys.iter()
            .map(|k| (k.as_bytes().to_vec(), format!("v{k}").into_bytes()))
            .collect()
    }

    #[test]
    fn a_complete_scan_answers_every_key_found_or_not() {
        let found = join_records(&[b"a", b"c", b"e"], rows(&["a", "b", "e"]), true);
        assert_eq!(found.len(), 3);
        assert_eq!(found[b"a".as_slice()], Some(b"va".to_vec()));
        assert_eq!(found[b"c".as_slice()], None);
        assert_eq!(found[b"e".as_slice()], Some(b"ve".to_vec()));
    }

    #[test]
    fn a_scan_cut_by_its_limit_answers_only_the_keys_up_to_its_last_row() {
        let found = join_records(&[b"a", b"c", b"e"], rows(&["a", "b"]), false);
        assert_eq!(
            found.len(),
            1,
            "c and e lie beyond the last row read: unknown"
        );
        assert_eq!(found[b"a".as_slice()], Some(b"va".to_vec()));
    }

    #[test]
    fn prefixes_get_their_own_records_and_unread_prefixes_are_left_out() {
        let wanted: [&[u8]; 3] = [b"a/", b"b/", b"c/"];
        let all = join_prefixes(&wanted, rows(&["a/1", "a/2", "ab", "c/1"]), true);
        assert_eq!(all[b"a/".as_slice()].len(), 2);
        assert!(all[b"b/".as_slice()].is_empty());
        assert_eq!(all[b"c/".as_slice()], rows(&["c/1"]));
        let cut = join_prefixes(&wanted, rows(&["a/1", "a/2", "b/1"]), false);
        assert_eq!(
            cut.len(),
            1,
            "b/ may hold more after b/1, c/ was not reached"
        );
        assert_eq!(cut[b"a/".as_slice()].len(), 2);
    }

    #[test]
    fn nested_prefixes_are_not_read_ahead() {
        assert!(sorted_prefixes(&[b"ab".to_vec(), b"a".to_vec()]).is_none());
        assert_eq!(
            sorted_prefixes(&[b"b".to_vec(), b"a".to_vec(), b"b".to_vec()]),
            Some(vec![b"a".as_slice(), b"b".as_slice()])
        );
    }

    #[test]
    fn a_write_forgets_the_key_and_every_prefix_of_it() {
        let mut ahead = ReadAhead::default();
        ahead.set_records("t", join_records(&[b"k1", b"k2"], rows(&["k1"]), true));
        ahead.set_scans("t", join_prefixes(&[b"k", b"x"], rows(&["k1"]), true));
        ahead.forget("t", b"k1");
        assert_eq!(ahead.record("t", b"k1"), None);
        assert_eq!(ahead.record("t", b"k2"), Some(None));
        assert_eq!(ahead.scan("t", b"k"), None);
        assert_eq!(ahead.scan("t", b"x"), Some(Vec::new()));
        assert_eq!(ahead.record("other", b"k2"), None);
    }
}
