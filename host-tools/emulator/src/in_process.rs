//! The card image in this process, as a [`CardChannel`]: no reader, no driver.

use card_client::{CardChannel, ChannelError, EntropyError};
use card_image::{LinkcardCard, LinkcardImage};
use card_os::Card;
use card_os::layout::CardNvm;
use card_os::nvm::Nvm;

/// What [`InProcessChannel::describe`] says.
pub const IN_PROCESS_DESCRIPTION: &str = "in-process linkcard card";

/// The linkcard card image running in this process on memory `N` (RAM by default; a tearing memory in tear
/// tests), seeded from the operating system and powered on. It counts the APDUs it carries.
#[derive(Debug)]
pub struct InProcessChannel<N: Nvm = CardNvm> {
    // Boxed: the card holds its APDU buffers inline and is several KB.
    card: Box<Card<LinkcardImage, N>>,
    apdus: usize,
}

impl InProcessChannel {
    /// A fresh factory card, powered on.
    pub fn new() -> Result<Self, EntropyError> {
        Self::with_card(Box::default())
    }

    /// Wraps an existing card, seeds its random generator and powers it on (a warm reset if it already was).
    pub fn with_card(card: Box<LinkcardCard>) -> Result<Self, EntropyError> {
        InProcessChannel::with(card)
    }
}

impl<N: Nvm> InProcessChannel<N> {
    /// A card on `nvm` (its persistent memory as a previous card left it, or erased), powered on.
    pub fn on(nvm: N) -> Result<Self, EntropyError> {
        Self::with(Box::new(Card::with_nvm(nvm)))
    }

    fn with(mut card: Box<Card<LinkcardImage, N>>) -> Result<Self, EntropyError> {
        crate::seed_from_os(&mut card)?;
        card.power_on();
        Ok(Self { card, apdus: 0 })
    }

    /// The card's persistent memory, as a power loss would leave it (`None` if its store never opened).
    pub fn into_nvm(self) -> Option<N> {
        self.card.into_nvm()
    }

    /// APDUs carried so far.
    pub fn apdus(&self) -> usize {
        self.apdus
    }

    /// The card, to inspect its state.
    pub fn card(&self) -> &Card<LinkcardImage, N> {
        &self.card
    }

    /// The card, to change what a test needs (its random seed, for instance).
    pub fn card_mut(&mut self) -> &mut Card<LinkcardImage, N> {
        &mut self.card
    }
}

impl<N: Nvm> CardChannel for InProcessChannel<N> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.apdus += 1;
        // Room for the largest response data the card holds, plus SW1 SW2.
        let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
        let len = self.card.transmit(apdu, &mut out);
        out.truncate(len);
        Ok(out)
    }

    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.card.power_on().as_bytes().to_vec())
    }

    fn power_off(&mut self) -> Result<(), ChannelError> {
        self.card.power_off();
        Ok(())
    }

    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.card.power_on().as_bytes().to_vec())
    }

    fn describe(&self) -> String {
        IN_PROCESS_DESCRIPTION.to_owned()
    }
}
