//! The file-backed NVM: state survives reopening, bad files are refused with clear errors, and the checked-in
//! version-1 image (`tests/fixtures/nvm-v1.bin`) still loads.

use std::path::{Path, PathBuf};

use card_os::store::Store;
use host_tools::file_nvm::{FileNvm, FileNvmError, HEADER_LEN};

const PAGE: usize = 128;
const PAGES: usize = 16;
type FileStore = Store<FileNvm, PAGE, 4>;

const FIXTURE_TEXT: &[u8] = b"linkcard NVM fixture, format version 1";
const FIXTURE_TEXT_AT: usize = 100;
const FIXTURE_COUNTER_AT: usize = 700;

fn fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/nvm-v1.bin")
}

/// A fresh path in the temp directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("linkcard-file-nvm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
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
    let error = FileNvm::open(&path, PAGE, PAGES * 2).unwrap_err();
    assert!(
        error.to_string().contains("made for 16 pages of 128 bytes"),
        "{error}"
    );

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

/// Writes the fixture again (only when the format changes on purpose, as a new version file):
/// `cargo test -p host-tools --test file_nvm -- --ignored write_fixture`.
#[test]
#[ignore = "regenerates tests/fixtures/nvm-v1.bin"]
fn write_fixture() {
    let path = fixture_path();
    let _ = std::fs::remove_file(&path);
    let mut store = FileStore::open(FileNvm::open(&path, PAGE, PAGES).unwrap()).unwrap();
    store.write(FIXTURE_TEXT_AT, FIXTURE_TEXT).unwrap();
    store.write(FIXTURE_COUNTER_AT, &[3, 2, 1]).unwrap();
}
