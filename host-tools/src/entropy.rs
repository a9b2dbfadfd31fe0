//! Randomness from the operating system, for the host and for the cards it emulates.

/// 32 bytes from the operating system's generator (`getrandom`). A host without one cannot run a card or a
/// secure channel safely, so this aborts the program with a message rather than continue with weak numbers.
pub fn os_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    if let Err(error) = getrandom::fill(&mut seed) {
        eprintln!("linkcard: the operating system's random generator failed: {error}");
        std::process::exit(70);
    }
    seed
}
