//! Randomness from the operating system, for the host and for the cards it emulates.

/// The operating system's random generator failed. A host without one cannot run a card or a secure channel
/// safely, so nothing falls back to weaker numbers: the caller gives up (the `linkcard` command exits with 70).
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random generator failed")]
pub struct EntropyError(#[from] getrandom::Error);

/// 32 bytes from the operating system's generator (`getrandom`).
pub fn os_seed() -> Result<[u8; 32], EntropyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(seed)
}
