//! PIN with Java Card `OwnerPIN` semantics, kept in one of the applet's own records (so the firewall covers it).
//!
//! * The try counter is decremented and **committed before** the comparison, outside any open transaction
//!   ([`RecordSpace::write_now`]), so neither a power cut nor an abort can give a free guess; a correct PIN
//!   restores it.
//! * The comparison takes the same time whatever the candidate ([`subtle`]); the stored PIN is padded so the
//!   length does not change the work done.
//! * The validated flag lives in RAM, in the applet's fields: the runtime clears it on every reset and power
//!   loss by creating the applet anew (Java Card semantics). An applet that wants it gone on deselect too calls
//!   [`OwnerPin::reset`] there (or declares its fields [`crate::applet::ClearOn::Deselect`]).
//!
//! Record layout: `[tries left, length, PIN padded to MAX_LEN]`.

use subtle::ConstantTimeEq;

use apdu_spec::StatusWord;

use crate::records::{RecordError, RecordSpace};
use crate::store::StoreAccess;

/// Longest PIN.
pub const MAX_LEN: usize = 16;
/// Bytes a PIN record takes.
pub const RECORD_LEN: usize = 2 + MAX_LEN;
/// Highest try limit (the count must fit the low nibble of 63Cx).
pub const MAX_TRIES: u8 = 15;

/// Why a PIN operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinError {
    /// Wrong PIN; this many tries are left (63Cx).
    Wrong {
        /// Tries left.
        tries_left: u8,
    },
    /// No tries left (6983).
    Blocked,
    /// No PIN was ever set (6985).
    NotSet,
    /// A PIN or candidate longer than [`MAX_LEN`], or empty (6700); a try limit outside 1-15.
    BadLength,
    /// The record store failed (6581, or 6A84 without room for the PIN).
    Record(RecordError),
}

impl From<RecordError> for PinError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::NotFound => Self::NotSet,
            other => Self::Record(other),
        }
    }
}

impl From<PinError> for StatusWord {
    fn from(error: PinError) -> Self {
        match error {
            PinError::Wrong { tries_left } => StatusWord::verify_failed(tries_left),
            PinError::Blocked => StatusWord::AUTH_METHOD_BLOCKED,
            PinError::NotSet => StatusWord::CONDITIONS_NOT_SATISFIED,
            PinError::BadLength => StatusWord::WRONG_LENGTH,
            PinError::Record(error) => error.into(),
        }
    }
}

/// A PIN kept in record `key` of its applet.
#[derive(Debug)]
pub struct OwnerPin {
    key: u8,
    try_limit: u8,
    validated: bool,
}

impl OwnerPin {
    /// A PIN in record `key` allowing `try_limit` (1-15) consecutive wrong tries.
    pub fn new(key: u8, try_limit: u8) -> Result<Self, PinError> {
        if !(1..=MAX_TRIES).contains(&try_limit) {
            return Err(PinError::BadLength);
        }
        Ok(Self {
            key,
            try_limit,
            validated: false,
        })
    }

    /// Sets the PIN and restores the tries, in one atomic write (part of an open transaction, if any).
    pub fn update<S: StoreAccess + ?Sized>(
        &mut self,
        records: &mut RecordSpace<'_, S>,
        pin: &[u8],
    ) -> Result<(), PinError> {
        if pin.is_empty() || pin.len() > MAX_LEN {
            return Err(PinError::BadLength);
        }
        let mut record = [0u8; RECORD_LEN];
        let (head, body) = record.split_at_mut(2);
        let len = u8::try_from(pin.len()).map_err(|_| PinError::BadLength)?;
        head.copy_from_slice(&[self.try_limit, len]);
        body.get_mut(..pin.len())
            .ok_or(PinError::BadLength)?
            .copy_from_slice(pin);
        records.put(self.key, &record)?;
        self.validated = false;
        Ok(())
    }

    fn read<S: StoreAccess + ?Sized>(
        &self,
        records: &RecordSpace<'_, S>,
    ) -> Result<[u8; RECORD_LEN], PinError> {
        let mut record = [0u8; RECORD_LEN];
        if records.get(self.key, &mut record)? != RECORD_LEN {
            return Err(PinError::NotSet);
        }
        Ok(record)
    }

    /// Tries left (0 when blocked).
    pub fn tries_left<S: StoreAccess + ?Sized>(
        &self,
        records: &RecordSpace<'_, S>,
    ) -> Result<u8, PinError> {
        let [tries, ..] = self.read(records)?;
        Ok(tries.min(self.try_limit))
    }

    /// Checks a candidate: the counter is decremented and committed first, then compared in constant time.
    pub fn check<S: StoreAccess + ?Sized>(
        &mut self,
        records: &mut RecordSpace<'_, S>,
        candidate: &[u8],
    ) -> Result<(), PinError> {
        self.validated = false;
        if candidate.len() > MAX_LEN {
            return Err(PinError::BadLength);
        }
        let [tries, length, stored @ ..] = self.read(records)?;
        if usize::from(length) > MAX_LEN {
            return Err(PinError::NotSet);
        }
        let tries = tries.min(self.try_limit);
        if tries == 0 {
            return Err(PinError::Blocked);
        }
        records.write_now(self.key, 0, &[tries - 1])?;
        let mut padded = [0u8; MAX_LEN];
        padded
            .get_mut(..candidate.len())
            .ok_or(PinError::BadLength)?
            .copy_from_slice(candidate);
        let candidate_len = u8::try_from(candidate.len()).map_err(|_| PinError::BadLength)?;
        let same_length = candidate_len.ct_eq(&length);
        if bool::from(same_length & padded.ct_eq(&stored)) {
            records.write_now(self.key, 0, &[self.try_limit])?;
            self.validated = true;
            Ok(())
        } else {
            Err(PinError::Wrong {
                tries_left: tries - 1,
            })
        }
    }

    /// Whether the PIN was presented correctly since the last reset/deselect.
    pub fn is_validated(&self) -> bool {
        self.validated
    }

    /// Forgets the validation (deselect, reset, power loss).
    pub fn reset(&mut self) {
        self.validated = false;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::nvm::{Nvm, NvmError, RamNvm, Tear, TearingNvm};
    use crate::records::RecordTable;
    use crate::store::{Store, StoreError};

    type Memory = RamNvm<{ 16 * 128 }, 128>;
    type TestStore<N> = Store<N, 128, 4>;
    const TABLE: RecordTable = RecordTable {
        base: 0,
        slots: 4,
        slot_size: 64,
    };
    const OWNER: u8 = 3;
    const KEY: u8 = 0x50;

    fn store_with_pin() -> (TestStore<Memory>, OwnerPin) {
        let mut store = TestStore::open(Memory::default()).unwrap();
        let mut pin = OwnerPin::new(KEY, 3).unwrap();
        pin.update(&mut TABLE.space(&mut store, OWNER), b"1234")
            .unwrap();
        (store, pin)
    }

    fn check<N: Nvm>(
        store: &mut TestStore<N>,
        pin: &mut OwnerPin,
        candidate: &[u8],
    ) -> Result<(), PinError> {
        pin.check(&mut TABLE.space(store, OWNER), candidate)
    }

    fn tries<N: Nvm>(store: &mut TestStore<N>, pin: &OwnerPin) -> u8 {
        pin.tries_left(&TABLE.space(store, OWNER)).unwrap()
    }

    #[test]
    fn tries_block_and_a_correct_pin_restores_them() {
        let (mut store, mut pin) = store_with_pin();
        assert_eq!(
            check(&mut store, &mut pin, b"0000"),
            Err(PinError::Wrong { tries_left: 2 })
        );
        assert_eq!(
            check(&mut store, &mut pin, b"123"),
            Err(PinError::Wrong { tries_left: 1 })
        );
        assert!(!pin.is_validated());
        assert_eq!(check(&mut store, &mut pin, b"1234"), Ok(()));
        assert!(pin.is_validated());
        assert_eq!(tries(&mut store, &pin), 3);
        pin.reset();
        assert!(!pin.is_validated());
        for left in [2, 1, 0] {
            assert_eq!(
                check(&mut store, &mut pin, b"12345"),
                Err(PinError::Wrong { tries_left: left })
            );
        }
        assert_eq!(check(&mut store, &mut pin, b"1234"), Err(PinError::Blocked));
        assert_eq!(StatusWord::from(PinError::Blocked), StatusWord(0x6983));
        assert_eq!(
            StatusWord::from(PinError::Wrong { tries_left: 2 }),
            StatusWord(0x63C2)
        );
        assert_eq!(
            check(&mut store, &mut pin, &[0; 17]),
            Err(PinError::BadLength)
        );
    }

    #[test]
    fn an_aborted_transaction_does_not_give_the_try_back() {
        let (mut store, mut pin) = store_with_pin();
        store.begin().unwrap();
        assert_eq!(
            check(&mut store, &mut pin, b"9999"),
            Err(PinError::Wrong { tries_left: 2 })
        );
        store.abort();
        assert_eq!(tries(&mut store, &pin), 2);
    }

    #[test]
    fn unset_pin_and_other_owners() {
        let (mut store, _) = store_with_pin();
        let mut pin = OwnerPin::new(KEY, 3).unwrap();
        // Another applet's PIN record with the same key is not this applet's.
        assert_eq!(
            pin.check(&mut TABLE.space(&mut store, OWNER + 1), b"1234"),
            Err(PinError::NotSet)
        );
        assert_eq!(OwnerPin::new(KEY, 0).err(), Some(PinError::BadLength));
    }

    /// Cuts the power at every write of a try: the counter never ends above what the try allows, and a wrong
    /// candidate is never compared unless its try was counted.
    #[test]
    fn power_loss_at_every_write_of_a_try() {
        let (store, _) = store_with_pin();
        let base = store.into_nvm();
        let mut tear_points = 0;
        for candidate in [&b"0000"[..], &b"1234"[..]] {
            let mut counting =
                TestStore::open(TearingNvm::new(base.clone(), None, Tear::Half)).unwrap();
            let _ = check(
                &mut counting,
                &mut OwnerPin::new(KEY, 3).unwrap(),
                candidate,
            );
            let writes = counting.into_nvm().writes();
            for tear in [Tear::Half, Tear::Garbage] {
                for at in 0..writes {
                    let mut store =
                        TestStore::open(TearingNvm::new(base.clone(), Some(at), tear)).unwrap();
                    let mut pin = OwnerPin::new(KEY, 3).unwrap();
                    let outcome = check(&mut store, &mut pin, candidate);
                    let lost =
                        PinError::Record(RecordError::Store(StoreError::Nvm(NvmError::PowerLost)));
                    assert_eq!(outcome, Err(lost));
                    assert!(!pin.is_validated());
                    let mut rebooted = TestStore::open(store.into_nvm().into_inner()).unwrap();
                    let left = tries(&mut rebooted, &pin);
                    assert!(
                        (2..=3).contains(&left),
                        "{tear:?} at {at}: {left} tries left"
                    );
                    tear_points += 1;
                }
            }
        }
        std::println!("PIN try: {tear_points} torn tries checked");
    }
}
