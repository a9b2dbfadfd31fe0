//! The card's own persistent state: the card life cycle and the registry, kept in the store so a card (a virtual
//! one with a state file included) comes back after power loss with the applets it had.
//!
//! Layout at store address 0, format version 1 (one atomic store write replaces it all):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `LCRG` |
//! | 1 | version (1) |
//! | 1 | card life cycle |
//! | 1 | number of instances |
//! | 1 | reserved |
//! | 48 per instance, in registry order | AID length, AID (16), module AID length, module AID (16), life cycle, privileges (3), owner, parameter length, parameters (8) |
//!
//! At power-on each instance is created again from its module and install parameters; its records are still in
//! the store under its owner number. An instance whose module the image no longer carries is left out.

use apdu_spec::gp::CardLifeCycle;
use apdu_spec::{Aid, StatusWord};

use crate::image::Image;
use crate::nvm::Nvm;
use crate::registry::{Entry, MAX_INSTANCES, MAX_PARAMETERS};
use crate::runtime::Runtime;

const MAGIC: [u8; 4] = *b"LCRG";
const VERSION: u8 = 1;
const HEADER: usize = 8;
const ENTRY: usize = 48;
/// Bytes reserved for the registry at the start of the store; the records follow.
pub const REGISTRY_AREA: usize = 1024;
const TABLE: usize = HEADER + MAX_INSTANCES * ENTRY;
const _: () = assert!(TABLE <= REGISTRY_AREA);

fn put_aid(out: &mut [u8], aid: &Aid) {
    let bytes = aid.as_bytes();
    if let Some((len, rest)) = out.split_first_mut() {
        *len = bytes.len() as u8;
        if let Some(dst) = rest.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
}

fn get_aid(bytes: &[u8]) -> Option<Aid> {
    let (len, rest) = bytes.split_first()?;
    Aid::new(rest.get(..usize::from(*len))?).ok()
}

impl<I: Image, N: Nvm> Runtime<I, N> {
    /// Writes the life cycle and the registry, atomically; 6581 when the store fails.
    pub(crate) fn persist_registry(&mut self) -> Result<(), StatusWord> {
        let mut table = [0xFFu8; TABLE];
        let count = self.registry.len();
        if let Some(header) = table.get_mut(..HEADER) {
            header.copy_from_slice(&[
                MAGIC[0],
                MAGIC[1],
                MAGIC[2],
                MAGIC[3],
                VERSION,
                self.life_cycle as u8,
                count as u8,
                0,
            ]);
        }
        for (slot, entry) in self.registry.iter().enumerate() {
            let Some(out) = table.get_mut(HEADER + slot * ENTRY..HEADER + (slot + 1) * ENTRY)
            else {
                break;
            };
            let (aid, rest) = out.split_at_mut(17);
            put_aid(aid, &entry.aid);
            let (module, rest) = rest.split_at_mut(17);
            put_aid(module, &entry.module);
            let (fixed, parameters) = rest.split_at_mut(6);
            let [p0, p1, p2] = entry.privileges;
            fixed.copy_from_slice(&[
                entry.state,
                p0,
                p1,
                p2,
                entry.owner,
                entry.parameters.len() as u8,
            ]);
            if let Some(dst) = parameters.get_mut(..entry.parameters.len()) {
                dst.copy_from_slice(&entry.parameters);
            }
        }
        let store = self.store.as_mut().ok_or(StatusWord::MEMORY_FAILURE)?;
        store
            .write(0, &table)
            .map_err(|_| StatusWord::MEMORY_FAILURE)
    }

    /// Reads the life cycle and re-creates the registry; false when the store holds none (a new card).
    pub(crate) fn load_registry(&mut self) -> bool {
        let Some(store) = self.store.as_ref() else {
            return false;
        };
        let mut table = [0u8; TABLE];
        if store.read(0, &mut table).is_err() {
            return false;
        }
        let Some((header, entries)) = table.split_at_checked(HEADER) else {
            return false;
        };
        let [m0, m1, m2, m3, version, life_cycle, count, _] = header else {
            return false;
        };
        if [*m0, *m1, *m2, *m3] != MAGIC || *version != VERSION {
            return false;
        }
        self.life_cycle = CardLifeCycle::from_byte(*life_cycle).unwrap_or(CardLifeCycle::OpReady);
        for encoded in entries.chunks_exact(ENTRY).take(usize::from(*count)) {
            let (aid_bytes, rest) = encoded.split_at(17);
            let (module_bytes, rest) = rest.split_at(17);
            let (Some(aid), Some(module)) = (get_aid(aid_bytes), get_aid(module_bytes)) else {
                continue;
            };
            let [state, p0, p1, p2, owner, parameter_len, parameters @ ..] = rest else {
                continue;
            };
            let Some(parameters) = parameters.get(..usize::from(*parameter_len)) else {
                continue;
            };
            let Ok(parameters) = heapless::Vec::<u8, MAX_PARAMETERS>::from_slice(parameters) else {
                continue;
            };
            let Some(load_file) = I::LOAD_FILES.iter().find(|lf| lf.modules.contains(&module))
            else {
                continue;
            };
            let Ok(applet) = I::instantiate(&module, &aid, &parameters) else {
                continue;
            };
            let _ = self.registry.add(Entry {
                aid,
                load_file: load_file.aid,
                module,
                parameters,
                state: *state,
                privileges: [*p0, *p1, *p2],
                owner: *owner,
                applet,
            });
        }
        true
    }
}
