//! What writers and readers count while items stream by: how many, their sum, and whether an end-to-end id came
//! twice.
//!
//! Ids are not kept: each is reduced to a 128-bit keyed fingerprint (two SipHash-1-3 with keys random per
//! process), 16 bytes per item — 16 MB per million items, the only memory that grows with the file. Two distinct
//! ids of a million collide with probability about 2⁻⁸⁸.

use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use crate::error::{FieldProblem, InterchangeError, Result};
use crate::values::MAX_AMOUNT;

pub(crate) struct Tally {
    count: u64,
    sum: u64,
    fingerprints: HashSet<u128, BuildHasherDefault<FingerprintHasher>>,
    keys: (RandomState, RandomState),
}

impl Tally {
    pub(crate) fn new(expected_count: u64) -> Self {
        // Reserve up front so a large file does not rehash a dozen times; bounded, since the count is the file's word.
        let capacity = usize::try_from(expected_count.min(1 << 20)).unwrap_or(0);
        Self {
            count: 0,
            sum: 0,
            fingerprints: HashSet::with_capacity_and_hasher(
                capacity,
                BuildHasherDefault::default(),
            ),
            keys: (RandomState::new(), RandomState::new()),
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Counts an item, adds its amount to the sum (`sum_field` names the sum if it outgrows 18 digits), and refuses
    /// an end-to-end id seen before.
    pub(crate) fn add(
        &mut self,
        end_to_end_id: &str,
        amount: u64,
        sum_field: &'static str,
    ) -> Result<()> {
        let sum = self
            .sum
            .checked_add(amount)
            .filter(|sum| *sum <= MAX_AMOUNT);
        let sum = sum.ok_or(InterchangeError::field(sum_field, FieldProblem::TooLarge))?;
        let fingerprint = u128::from(self.keys.0.hash_one(end_to_end_id)) << 64
            | u128::from(self.keys.1.hash_one(end_to_end_id));
        if !self.fingerprints.insert(fingerprint) {
            return Err(InterchangeError::DuplicateEndToEndId(
                end_to_end_id.to_owned(),
            ));
        }
        self.count += 1;
        self.sum = sum;
        Ok(())
    }

    /// Refuses one more item than `declared` announced, as soon as it comes.
    pub(crate) fn check_room(&self, declared: u64, count_field: &'static str) -> Result<()> {
        if self.count >= declared {
            return Err(InterchangeError::CountMismatch {
                field: count_field,
                declared,
                actual: self.count + 1,
            });
        }
        Ok(())
    }

    /// At the end: the count and the sum must be those declared.
    pub(crate) fn check_totals(
        &self,
        (count_field, declared_count): (&'static str, u64),
        (sum_field, declared_sum): (&'static str, u64),
    ) -> Result<()> {
        if self.count != declared_count {
            return Err(InterchangeError::CountMismatch {
                field: count_field,
                declared: declared_count,
                actual: self.count,
            });
        }
        if self.sum != declared_sum {
            return Err(InterchangeError::SumMismatch {
                field: sum_field,
                declared: declared_sum,
                actual: self.sum,
            });
        }
        Ok(())
    }
}

/// The fingerprints are already keyed hashes: the set uses them as they are.
#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = (value >> 64) as u64 ^ value as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sums_and_refuses_duplicates() {
        let mut tally = Tally::new(3);
        assert!(tally.add("a", 5, "CtrlSum").is_ok());
        assert!(tally.add("b", 7, "CtrlSum").is_ok());
        assert!(
            matches!(tally.add("a", 1, "CtrlSum"), Err(InterchangeError::DuplicateEndToEndId(id)) if id == "a")
        );
        assert!(tally.check_totals(("NbOfTxs", 2), ("CtrlSum", 12)).is_ok());
        assert!(matches!(
            tally.check_totals(("NbOfTxs", 3), ("CtrlSum", 12)),
            Err(InterchangeError::CountMismatch {
                declared: 3,
                actual: 2,
                ..
            })
        ));
        assert!(matches!(
            tally.check_totals(("NbOfTxs", 2), ("CtrlSum", 13)),
            Err(InterchangeError::SumMismatch {
                declared: 13,
                actual: 12,
                ..
            })
        ));
        assert!(tally.check_room(2, "NbOfTxs").is_err());
        assert!(matches!(
            tally.add("c", MAX_AMOUNT, "CtrlSum"),
            Err(InterchangeError::Field {
                problem: FieldProblem::TooLarge,
                ..
            })
        ));
    }
}
