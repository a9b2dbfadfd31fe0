//! The file-backed NVM: state survives reopening, bad files are refused with clear errors, and the checked-in
//! version-1 image (`tests/fixtures/nvm-v1.bin`) still loads.

use std::path::{Path, PathBuf};

use apdu_spec::aid;
use apdu_spec::builder::Command;
use apdu_spec::gp::{
    CardLifeCycle, CardManagerCommand, InstallRequest, SetStatusTarget, StatusScope, app_state,
};
use apdu_spec::iso::{Occurrence, Select};
use apdu_spec::loopback::{LoopbackCommand, flags};
use card_os::store::Store;
use emulator::FileCard;
use emulator::file_nvm::{FileNvm, FileNvmError, HEADER_LEN};

const PAGE: usize = 128;
const PAGES: usize = 16;
type FileStore = Store<FileNvm, PAGE, 4>;

const FIXTURE_TEXT: &[u8] = b"linkcard NVM fixture, format version 1";
const FIXTURE_TEXT_AT: usize = 100;
const FIXTURE_COUNTER_AT: usize = 700;

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/nvm-v1.bin")
}

/// Removes a file left by an earlier run; any failure but its absence fails the test.
fn remove_if_present(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", path.display()),
    }
}

/// A fresh path in the temp directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("linkcard-file-nvm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    remove_if_present(&path);
    path
}

#[test]
fn state_survives_reopening() {
    let path = scratch("reopen.nvm");
    let mut store = FileStore::open(FileNvm::open(&path, PAGE, PAGES).unwrap()).unwrap();
    store.begin().unwrap();
    store.write(10, b"kept").unwrap();
    store.write(600, b"also").unwrap();
    store.commit().unwrap();
    drop(store);
    let store = FileStore::open(FileNvm::open(&path, PAGE, PAGES).unwrap()).unwrap();
    let mut back = [0u8; 4];
    store.read(10, &mut back).unwrap();
    assert_eq!(&back, b"kept");
    store.read(600, &mut back).unwrap();
    assert_eq!(&back, b"also");
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        HEADER_LEN + PAGE * PAGES
    );
}

#[test]
fn bad_files_are_refused_clearly() {
    let path = scratch("bad.nvm");
    std::fs::write(&path, b"not a card").unwrap();
    let error = FileNvm::open(&path, PAGE, PAGES).unwrap_err();
    assert!(matches!(error, FileNvmError::Format { .. }), "{error}");

    let path = scratch("geometry.nvm");
    drop(FileNvm::open(&path, PAGE, PAGES).unwrap());
    // A larger file than the card (nothing is cut off), or another page size.
    let error = FileNvm::open(&path, PAGE, PAGES / 2).unwrap_err();
    assert!(
        error.to_string().contains("made for 16 pages of 128 bytes"),
        "{error}"
    );
    let error = FileNvm::open(&path, PAGE * 2, PAGES).unwrap_err();
    assert!(matches!(error, FileNvmError::Geometry { .. }), "{error}");

    let mut newer = std::fs::read(fixture_path()).unwrap();
    newer[9] = 2; // format version 2
    let path = scratch("newer.nvm");
    std::fs::write(&path, &newer).unwrap();
    assert!(matches!(
        FileNvm::open(&path, PAGE, PAGES),
        Err(FileNvmError::TooNew { found: 2, .. })
    ));

    let mut truncated = std::fs::read(fixture_path()).unwrap();
    truncated.truncate(HEADER_LEN + 5);
    let path = scratch("truncated.nvm");
    std::fs::write(&path, &truncated).unwrap();
    assert!(matches!(
        FileNvm::open(&path, PAGE, PAGES),
        Err(FileNvmError::Format { .. })
    ));
}

#[test]
fn version_1_fixture_still_loads() {
    let path = scratch("fixture.nvm");
    std::fs::copy(fixture_path(), &path).unwrap();
    let store = FileStore::open(FileNvm::open(&path, PAGE, PAGES).unwrap()).unwrap();
    let mut text = vec![0u8; FIXTURE_TEXT.len()];
    store.read(FIXTURE_TEXT_AT, &mut text).unwrap();
    assert_eq!(text, FIXTURE_TEXT);
    let mut counter = [0u8; 3];
    store.read(FIXTURE_COUNTER_AT, &mut counter).unwrap();
    assert_eq!(counter, [3, 2, 1]);
}

#[test]
fn smaller_file_grows_by_erased_pages() {
    let path = scratch("grow.nvm");
    std::fs::copy(fixture_path(), &path).unwrap();
    let mut store = FileStore::open(FileNvm::open(&path, PAGE, PAGES * 2).unwrap()).unwrap();
    let mut text = vec![0u8; FIXTURE_TEXT.len()];
    store.read(FIXTURE_TEXT_AT, &mut text).unwrap();
    assert_eq!(text, FIXTURE_TEXT);
    // The added pages are erased, and writable.
    // The last store page (the journal, 1 + 4 pages, comes first in the memory).
    let beyond = (PAGES * 2 - 6) * PAGE;
    let mut erased = [0u8; PAGE];
    store.read(beyond, &mut erased).unwrap();
    assert!(erased.iter().all(|b| *b == 0xFF));
    store.write(beyond, b"grown").unwrap();
    drop(store);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        HEADER_LEN + PAGE * PAGES * 2
    );
    // Reopened at its new size: the header says so, and both old and new data are there.
    let store = FileStore::open(FileNvm::open(&path, PAGE, PAGES * 2).unwrap()).unwrap();
    let mut back = [0u8; 5];
    store.read(beyond, &mut back).unwrap();
    assert_eq!(&back, b"grown");
    store.read(FIXTURE_TEXT_AT, &mut text).unwrap();
    assert_eq!(text, FIXTURE_TEXT);
}

/// Writes the fixture again (only when the format changes on purpose, as a new version file):
/// `cargo test -p emulator --test file_nvm -- --ignored write_fixture`.
#[test]
#[ignore = "regenerates tests/fixtures/nvm-v1.bin"]
fn write_fixture() {
    let path = fixture_path();
    remove_if_present(&path);
    let mut store = FileStore::open(FileNvm::open(&path, PAGE, PAGES).unwrap()).unwrap();
    store.write(FIXTURE_TEXT_AT, FIXTURE_TEXT).unwrap();
    store.write(FIXTURE_COUNTER_AT, &[3, 2, 1]).unwrap();
}

/// A whole card (registry, life cycle, records) saved with card state format version 1.
fn card_fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/card-v1.nvm")
}

/// The card on a state file, as `linkcard card emulate --state-dir` opens it (the card's own geometry).
fn open_card(path: &Path) -> Box<FileCard> {
    let mut card = emulator::open_file_card(path).unwrap();
    card.power_on();
    card
}

fn send(card: &mut FileCard, apdu: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
    let n = card.transmit(apdu, &mut out);
    out.truncate(n);
    out
}

const FF02: [u8; 7] = [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x02];

fn bytes(command: Command) -> Vec<u8> {
    command.to_bytes().unwrap()
}

/// SELECT by AID without FCI (an empty AID selects the card manager).
fn select(aid: &[u8]) -> Vec<u8> {
    bytes(
        Select::ByName {
            name: aid,
            occurrence: Occurrence::First,
            fci: false,
        }
        .to_command(),
    )
}

fn get_status(scope: StatusScope, aid_prefix: &[u8]) -> Vec<u8> {
    bytes(
        CardManagerCommand::GetStatus {
            scope,
            next: false,
            aid_prefix,
        }
        .to_command(),
    )
}

fn set_status(target: SetStatusTarget, state: u8, aid: &[u8]) -> Vec<u8> {
    bytes(CardManagerCommand::SetStatus { target, state, aid }.to_command())
}

#[test]
fn version_1_card_fixture_still_loads() {
    let path = scratch("card-fixture.nvm");
    std::fs::copy(card_fixture_path(), &path).unwrap();
    let mut card = open_card(&path);
    // The card manager: INITIALIZED; FF02 installed with flags 01 and PERSONALIZED (0F).
    let isd = send(
        &mut card,
        &get_status(StatusScope::IssuerSecurityDomain, &[]),
    );
    assert!(
        isd.windows(4).any(|w| w == [0x9F, 0x70, 0x01, 0x07]),
        "INITIALIZED: {isd:02X?}"
    );
    let apps = send(&mut card, &get_status(StatusScope::Applications, &FF02));
    assert!(
        apps.windows(4).any(|w| w == [0x9F, 0x70, 0x01, 0x0F]),
        "{apps:02X?}"
    );
    assert_eq!(send(&mut card, &select(&FF02)), [0x90, 0x00]);
    assert_eq!(
        send(&mut card, &bytes(LoopbackCommand::Info.to_command()))[..2],
        [0x00, 0x01],
        "install flags"
    );
    let record = send(&mut card, &bytes(LoopbackCommand::Get(5).to_command()));
    assert_eq!(record, [&b"fixture record"[..], &[0x90, 0x00]].concat());
    // The file was made with 56 pages; it now has the card's, and the slots beyond the old 32 are usable: fill
    // more records than the old table held, then reopen and read them all back.
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        HEADER_LEN + card_os::layout::STORE_PAGE * card_os::layout::STORE_PAGES
    );
    let keys = 10..(10 + card_os::layout::RECORD_SLOTS_V1 as u8 + 8);
    for key in keys.clone() {
        let put = LoopbackCommand::Put {
            key,
            data: &[key; 200],
            leave_open: false,
        };
        assert_eq!(
            send(&mut card, &bytes(put.to_command())),
            [0x90, 0x00],
            "record {key}"
        );
    }
    drop(card);
    let mut card = open_card(&path);
    assert_eq!(send(&mut card, &select(&FF02)), [0x90, 0x00]);
    for key in keys {
        let record = send(&mut card, &bytes(LoopbackCommand::Get(key).to_command()));
        assert_eq!(record, [&[key; 200][..], &[0x90, 0x00]].concat());
    }
}

/// Writes the card fixture again (only for a new format version, as a new file):
/// `cargo test -p emulator --test file_nvm -- --ignored write_card_fixture`.
#[test]
#[ignore = "regenerates tests/fixtures/card-v1.nvm"]
fn write_card_fixture() {
    let path = card_fixture_path();
    remove_if_present(&path);
    let mut card = open_card(&path);
    let install = CardManagerCommand::Install(InstallRequest {
        install: true,
        make_selectable: true,
        load_file: aid::LOOPBACK_LOAD_FILE.as_bytes(),
        module: aid::LOOPBACK_MODULE.as_bytes(),
        application: &FF02,
        privileges: &[0x00],
        applet_parameters: &[flags::MULTI_SELECTABLE],
    });
    assert_eq!(
        send(&mut card, &bytes(install.to_command().with_ne(256))),
        [0x00, 0x90, 0x00]
    );
    assert_eq!(send(&mut card, &select(&FF02)), [0x90, 0x00]);
    let put = LoopbackCommand::Put {
        key: 5,
        data: b"fixture record",
        leave_open: false,
    };
    assert_eq!(send(&mut card, &bytes(put.to_command())), [0x90, 0x00]);
    assert_eq!(send(&mut card, &select(&[])), [0x90, 0x00]);
    let personalized = set_status(SetStatusTarget::Application, app_state::PERSONALIZED, &FF02);
    assert_eq!(send(&mut card, &personalized), [0x90, 0x00]);
    let initialized = set_status(SetStatusTarget::Card, CardLifeCycle::Initialized as u8, &[]);
    assert_eq!(send(&mut card, &initialized), [0x90, 0x00]);
}
