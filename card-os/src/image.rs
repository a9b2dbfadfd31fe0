//! The applet types a card image carries. There is no loader: INSTALL can only create instances of the modules
//! an [`Image`] declares, and the image says which instances exist when the card leaves the factory.

use apdu_spec::{Aid, StatusWord};

use crate::applet::Applet;

/// An executable load file built into the image, with its modules.
#[derive(Clone, Copy, Debug)]
pub struct LoadFile {
    /// Load file (package) AID.
    pub aid: Aid,
    /// Module (applet class) AIDs.
    pub modules: &'static [Aid],
}

/// An instance present on a new card.
#[derive(Clone, Copy, Debug)]
pub struct FactoryInstance {
    /// Module to instantiate.
    pub module: Aid,
    /// Instance AID.
    pub aid: Aid,
    /// Install parameters (value of C9).
    pub parameters: &'static [u8],
    /// GlobalPlatform privileges.
    pub privileges: [u8; 3],
}

/// The applets of one card image.
pub trait Image {
    /// One enum over every applet type, so the registry needs no allocator.
    type Applet: Applet;

    /// Historical bytes of the ATR (at most 15), naming the card.
    const HISTORICAL_BYTES: &'static [u8];

    /// Load files and modules INSTALL can instantiate.
    const LOAD_FILES: &'static [LoadFile];

    /// Instances installed and selectable on a new card.
    const FACTORY_INSTANCES: &'static [FactoryInstance];

    /// Creates an instance of `module` (one of [`Image::LOAD_FILES`]) with its install parameters;
    /// 6A80 when the parameters are wrong.
    fn instantiate(module: &Aid, aid: &Aid, parameters: &[u8]) -> Result<Self::Applet, StatusWord>;
}
