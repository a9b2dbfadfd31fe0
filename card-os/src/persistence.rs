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

use crate::image::{AppletSet, Image};
use crate::layout::REGISTRY_AREA;
use crate::registry::{Entry, MAX_INSTANCES, MAX_PARAMETERS, Registry};
use crate::store::StoreAccess;

const MAGIC: [u8; 4] = *b"LCRG";
const VERSION: u8 = 1;
const HEADER: usize = 8;
const ENTRY: usize = 48;
const TABLE: usize = HEADER + MAX_INSTANCES * ENTRY;
const _: () = assert!(TABLE <= REGISTRY_AREA);
const _: () = assert!(MAX_INSTANCES <= u8::MAX as usize && MAX_PARAMETERS <= 8);

fn put_aid(out: &mut [u8], aid: &Aid) {
    let bytes = aid.as_bytes();
    if let Some((len, rest)) = out.split_first_mut() {
        // AIDs are at most 16 bytes (`Aid::new` checks it).
        *len = u8::try_from(bytes.len()).unwrap_or(0);
        if let Some(dst) = rest.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
}

fn get_aid(bytes: &[u8]) -> Option<Aid> {
    let (len, rest) = bytes.split_first()?;
    Aid::new(rest.get(..usize::from(*len))?).ok()
}

/// Writes the life cycle and the registry, atomically; 6581 when the store fails.
pub(crate) fn save<A>(
    store: &mut dyn StoreAccess,
    life_cycle: CardLifeCycle,
    registry: &Registry<A>,
) -> Result<(), StatusWord> {
    let mut table = [0xFFu8; TABLE];
    let count = u8::try_from(registry.len()).map_err(|_| StatusWord::UNKNOWN)?;
    if let Some(header) = table.get_mut(..HEADER) {
        header.copy_from_slice(&[
            MAGIC[0],
            MAGIC[1],
            MAGIC[2],
            MAGIC[3],
            VERSION,
            life_cycle as u8,
            count,
            0,
        ]);
    }
    for (slot, entry) in registry.iter().enumerate() {
        let Some(out) = table.get_mut(HEADER + slot * ENTRY..HEADER + (slot + 1) * ENTRY) else {
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
            // At most MAX_PARAMETERS (asserted above).
            u8::try_from(entry.parameters.len()).unwrap_or(0),
        ]);
        if let Some(dst) = parameters.get_mut(..entry.parameters.len()) {
            dst.copy_from_slice(&entry.parameters);
        }
    }
    store
        .write(0, &table)
        .map_err(|_| StatusWord::MEMORY_FAILURE)
}

/// Reads the life cycle and re-creates the registry in `registry` (in place: it is kilobytes); `None` when the
/// store holds none (a new card), `registry` then left empty.
pub(crate) fn load<I: Image>(
    store: &dyn StoreAccess,
    registry: &mut Registry<I::Applet>,
) -> Option<CardLifeCycle> {
    registry.clear();
    let mut table = [0u8; TABLE];
    store.read(0, &mut table).ok()?;
    let (header, entries) = table.split_at_checked(HEADER)?;
    let [m0, m1, m2, m3, version, life_cycle, count, _] = header else {
        return None;
    };
    if [*m0, *m1, *m2, *m3] != MAGIC || *version != VERSION {
        return None;
    }
    let life_cycle = CardLifeCycle::from_byte(*life_cycle).unwrap_or(CardLifeCycle::OpReady);
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
        let Some(load_file) = I::Applet::LOAD_FILES
            .iter()
            .find(|lf| lf.modules.contains(&module))
        else {
            continue;
        };
        let Ok(applet) = I::Applet::instantiate(&module, &aid, &parameters) else {
            continue;
        };
        let added = registry.add(Entry {
            aid,
            load_file: load_file.aid,
            module,
            parameters,
            state: *state,
            privileges: [*p0, *p1, *p2],
            owner: *owner,
            applet,
        });
        // The table holds at most MAX_INSTANCES entries, as many as the registry.
        debug_assert!(added.is_ok());
    }
    Some(life_cycle)
}
