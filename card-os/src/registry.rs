//! The applet registry: installed instances in installation order, with their GlobalPlatform state.

use apdu_spec::gp::app_state;
use apdu_spec::{Aid, StatusWord};
use heapless::Vec;

/// Most applet instances one card holds.
pub const MAX_INSTANCES: usize = 16;
/// Longest install parameters (C9 value) an instance keeps.
pub const MAX_PARAMETERS: usize = 8;

/// One installed instance.
#[derive(Debug)]
pub struct Entry<A> {
    /// Instance AID.
    pub aid: Aid,
    /// The load file it was created from.
    pub load_file: Aid,
    /// The module it instantiates.
    pub module: Aid,
    /// Its install parameters (the value of C9), kept to re-create it at power-on.
    pub parameters: Vec<u8, MAX_PARAMETERS>,
    /// Application life cycle byte (GP §5.3.1).
    pub state: u8,
    /// Privileges.
    pub privileges: [u8; 3],
    /// The owner number of its persistent records: stable while the instance exists, unlike its position.
    pub owner: u8,
    /// The applet object.
    pub applet: A,
}

impl<A> Entry<A> {
    /// Selectable: SELECTABLE or an application-specific state, and not LOCKED.
    pub fn selectable(&self) -> bool {
        !app_state::is_locked(self.state)
            && self.state & app_state::SELECTABLE == app_state::SELECTABLE
    }
}

/// One instance with mutable access to the others: (entries before it, the instance, entries after it).
pub type WithPeers<'a, A> = (&'a mut [Entry<A>], &'a mut Entry<A>, &'a mut [Entry<A>]);

/// Installed instances, in installation order (which is also the order of partial-AID selection).
#[derive(Debug)]
pub struct Registry<A> {
    entries: Vec<Entry<A>, MAX_INSTANCES>,
}

impl<A> Default for Registry<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A> Registry<A> {
    /// No instance.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<A> Registry<A> {
    /// Adds an instance; 6A84 when the registry is full.
    pub fn add(&mut self, entry: Entry<A>) -> Result<usize, StatusWord> {
        self.entries
            .push(entry)
            .map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
        Ok(self.entries.len() - 1)
    }
    /// Removes every instance.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
    /// Removes the instance at `index`; later indices shift down by one.
    pub fn remove(&mut self, index: usize) -> Option<Entry<A>> {
        (index < self.entries.len()).then(|| self.entries.remove(index))
    }
    /// The index of the instance with exactly this AID.
    pub fn position(&self, aid: &[u8]) -> Option<usize> {
        self.entries.iter().position(|e| e.aid.as_bytes() == aid)
    }
    /// The entry at `index`.
    pub fn get(&self, index: usize) -> Option<&Entry<A>> {
        self.entries.get(index)
    }
    /// The lowest owner number no instance uses.
    pub fn free_owner(&self) -> u8 {
        (0..=u8::MAX)
            .find(|o| self.entries.iter().all(|e| e.owner != *o))
            .unwrap_or(u8::MAX)
    }
    /// The entries before `index`, the entry, and the entries after it: an applet and its peers at once.
    pub fn split_at(&mut self, index: usize) -> Option<WithPeers<'_, A>> {
        let (before, rest) = self.entries.as_mut_slice().split_at_mut_checked(index)?;
        let (entry, after) = rest.split_first_mut()?;
        Some((before, entry, after))
    }
    /// The entry at `index`, mutably.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut Entry<A>> {
        self.entries.get_mut(index)
    }
    /// All entries in installation order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<A>> {
        self.entries.iter()
    }
    /// Number of instances.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
