//! The card image in this process, as a [`CardChannel`]: no reader, no driver.

use card_client::{CardChannel, ChannelError, EntropyError};
use card_image::LinkcardCard;

/// What [`InProcessChannel::describe`] says.
pub const IN_PROCESS_DESCRIPTION: &str = "in-process linkcard card";

/// The linkcard card image running in this process, seeded from the operating system and powered on.
#[derive(Debug)]
pub struct InProcessChannel {
    // Boxed: the card holds its APDU buffers inline and is several KB.
    card: Box<LinkcardCard>,
}

impl InProcessChannel {
    /// A fresh factory card, powered on.
    pub fn new() -> Result<Self, EntropyError> {
        Self::with_card(Box::default())
    }

    /// Wraps an existing card, seeds its random generator and powers it on (a warm reset if it already was).
    pub fn with_card(mut card: Box<LinkcardCard>) -> Result<Self, EntropyError> {
        crate::seed_from_os(&mut card)?;
        card.power_on();
        Ok(Self { card })
    }

    /// The card, to inspect its state.
    pub fn card(&self) -> &LinkcardCard {
        &self.card
    }

    /// The card, to change what a test needs (its random seed, for instance).
    pub fn card_mut(&mut self) -> &mut LinkcardCard {
        &mut self.card
    }
}

impl CardChannel for InProcessChannel {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
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
