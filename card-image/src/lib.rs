//! The linkcard card image: the card runtime with the applets built into it.
//!
//! Every transport (in-process tests, the PC/SC virtual card, the firmware) runs this same [`LinkcardCard`].
//! A new card is OP_READY with one factory instance, the loopback applet `F04C4E4B43FF01` (multi-selectable,
//! extended length), and INSTALL can create more instances of the applet types in [`LinkcardApplet`]: the
//! loopback, the bank applet (`bank_applet`, load file `F04C4E4B4301`, module `F04C4E4B430100`; the
//! issuer installs `F04C4E4B430101`) and the credit applet (`credit_applet`, load file `F04C4E4B4302`, module
//! `F04C4E4B430200`; the issuer installs `F04C4E4B430201`).
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod loopback;

use apdu_spec::aid;
use card_os::{Card, FactoryInstance, Image};

pub use bank_applet::BankApplet;
pub use credit_applet::CreditApplet;
pub use loopback::Loopback;

/// The card as every transport uses it.
pub type LinkcardCard = Card<LinkcardImage>;

/// The applet types of the linkcard image.
#[derive(Debug)]
pub enum LinkcardImage {}

card_os::applets! {
    /// One instance of any applet type in the image: one line per type.
    #[derive(Debug)]
    pub enum LinkcardApplet {
        Loopback(Loopback),
        Bank(BankApplet),
        Credit(CreditApplet),
    }
}

/// Historical bytes: category 80, then compact-TLV "card issuer's data" (tag 5, length 8) = "linkcard".
const HISTORICAL_BYTES: [u8; 10] = [0x80, 0x58, b'l', b'i', b'n', b'k', b'c', b'a', b'r', b'd'];

impl Image for LinkcardImage {
    type Applet = LinkcardApplet;

    const HISTORICAL_BYTES: &'static [u8] = &HISTORICAL_BYTES;

    const FACTORY_INSTANCES: &'static [FactoryInstance] = &[FactoryInstance {
        module: aid::LOOPBACK_MODULE,
        aid: aid::LOOPBACK_APPLET,
        parameters: &[apdu_spec::loopback::flags::MULTI_SELECTABLE
            | apdu_spec::loopback::flags::EXTENDED_LENGTH],
        privileges: [0, 0, 0],
    }];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_card_has_its_instances() {
        let mut card = LinkcardCard::new();
        let atr = card.power_on();
        assert_eq!(&atr.as_bytes()[..4], &[0x3B, 0x8A, 0x80, 0x01]);
        let mut out = [0u8; 300];
        // GET STATUS for applications lists every factory instance.
        let n = card.transmit(&[0x80, 0xF2, 0x40, 0x02, 0x02, 0x4F, 0x00, 0x00], &mut out);
        assert_eq!(&out[n - 2..n], &[0x90, 0x00]);
        let listed = &out[..n - 2];
        for f in LinkcardImage::FACTORY_INSTANCES {
            assert!(
                listed.windows(f.aid.len()).any(|w| w == f.aid.as_bytes()),
                "{:?} missing",
                f.aid
            );
        }
    }
}
