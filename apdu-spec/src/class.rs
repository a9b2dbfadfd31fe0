//! CLA byte decoding (ISO 7816-4 §5.4.1), shared by the card runtime and hosts.
//!
//! * first interindustry (`000x xxxx`): b5 chaining, b4-b3 secure messaging, b2-b1 channel 0-3;
//! * further interindustry (`01xx xxxx`): b6 secure messaging, b5 chaining, b4-b1 channel 4-19;
//! * proprietary (`1xxx xxxx`, as GlobalPlatform uses it): the same two layouts with b8 set;
//! * `001x xxxx` is reserved and `FF` is invalid: both are [`InvalidClass`] (the card answers 6E00).

/// The highest logical channel number a CLA byte can carry.
pub const MAX_CHANNEL: u8 = 19;

/// A decoded CLA byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    raw: u8,
    channel: u8,
    secure_messaging: bool,
    chaining: bool,
}

/// A CLA byte with no valid decoding (reserved range or FF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidClass;

impl core::fmt::Display for InvalidClass {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("invalid CLA byte (reserved or FF)")
    }
}

impl core::error::Error for InvalidClass {}

impl Class {
    /// Decodes a CLA byte.
    pub fn decode(raw: u8) -> Result<Self, InvalidClass> {
        if raw == 0xFF {
            return Err(InvalidClass);
        }
        let low = raw & 0x7F;
        match low {
            0x00..=0x1F => Ok(Self {
                raw,
                channel: low & 0x03,
                secure_messaging: low & 0x0C != 0,
                chaining: low & 0x10 != 0,
            }),
            0x40..=0x7F => Ok(Self {
                raw,
                channel: 4 + (low & 0x0F),
                secure_messaging: low & 0x20 != 0,
                chaining: low & 0x10 != 0,
            }),
            _ => Err(InvalidClass),
        }
    }

    /// Encodes a CLA byte for `channel` (0-19); `None` when the channel does not exist or the result would be
    /// `FF` (channel 19, proprietary, chained and secured: a value ISO reserves for PPS).
    pub const fn encode(
        channel: u8,
        proprietary: bool,
        chaining: bool,
        secure_messaging: bool,
    ) -> Option<u8> {
        let base = if channel <= 3 {
            channel | if secure_messaging { 0x04 } else { 0 }
        } else if channel <= MAX_CHANNEL {
            0x40 | (channel - 4) | if secure_messaging { 0x20 } else { 0 }
        } else {
            return None;
        };
        let chained = if chaining { base | 0x10 } else { base };
        let raw = if proprietary { chained | 0x80 } else { chained };
        if raw == 0xFF { None } else { Some(raw) }
    }

    /// The byte as received.
    pub const fn raw(self) -> u8 {
        self.raw
    }
    /// Logical channel 0-19.
    pub const fn channel(self) -> u8 {
        self.channel
    }
    /// Whether the command is secured (any secure-messaging indication).
    pub const fn secure_messaging(self) -> bool {
        self.secure_messaging
    }
    /// Whether more fragments of this command follow (command chaining).
    pub const fn chaining(self) -> bool {
        self.chaining
    }
    /// Proprietary class (b8 set): GlobalPlatform and applet-specific commands.
    pub const fn proprietary(self) -> bool {
        self.raw & 0x80 != 0
    }
    /// Interindustry class: commands whose meaning ISO 7816-4 defines (SELECT, MANAGE CHANNEL...).
    pub const fn interindustry(self) -> bool {
        !self.proprietary()
    }
    /// The same class with the chaining bit cleared (the class of a reassembled command).
    pub const fn without_chaining(self) -> Self {
        Self {
            raw: self.raw & !0x10,
            chaining: false,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_interindustry() {
        let c = Class::decode(0x13).unwrap();
        assert_eq!(
            (
                c.channel(),
                c.chaining(),
                c.secure_messaging(),
                c.proprietary()
            ),
            (3, true, false, false)
        );
        let c = Class::decode(0x84).unwrap();
        assert_eq!(
            (
                c.channel(),
                c.chaining(),
                c.secure_messaging(),
                c.proprietary()
            ),
            (0, false, true, true)
        );
    }

    #[test]
    fn further_interindustry() {
        let c = Class::decode(0x40).unwrap();
        assert_eq!(c.channel(), 4);
        let c = Class::decode(0x7F).unwrap();
        assert_eq!(
            (c.channel(), c.chaining(), c.secure_messaging()),
            (19, true, true)
        );
        let c = Class::decode(0xCF).unwrap();
        assert_eq!((c.channel(), c.proprietary()), (19, true));
    }

    #[test]
    fn reserved_and_invalid() {
        assert_eq!(Class::decode(0x20), Err(InvalidClass));
        assert_eq!(Class::decode(0xB0), Err(InvalidClass));
        assert_eq!(Class::decode(0xFF), Err(InvalidClass));
    }

    #[test]
    fn encode_round_trips_every_channel() {
        for channel in 0..=MAX_CHANNEL {
            for flags in 0..8u8 {
                let (p, ch, sm) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
                let Some(raw) = Class::encode(channel, p, ch, sm) else {
                    assert_eq!((channel, flags), (19, 7), "only FF is unencodable");
                    continue;
                };
                let c = Class::decode(raw).unwrap();
                assert_eq!(
                    (
                        c.channel(),
                        c.proprietary(),
                        c.chaining(),
                        c.secure_messaging()
                    ),
                    (channel, p, ch, sm)
                );
            }
        }
        assert_eq!(Class::encode(20, false, false, false), None);
    }
}
