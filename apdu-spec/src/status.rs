//! Status words (ISO 7816-4 §5.6, GlobalPlatform Card Specification §11.1.3), each with a name and meaning.

/// A two-byte status word SW1-SW2.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(pub u16);

impl core::fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.name())
    }
}

impl core::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04X} {}", self.0, self.name())
    }
}

/// One row of the status-word table: `sw & mask == value`.
struct Entry {
    mask: u16,
    value: u16,
    name: &'static str,
    meaning: &'static str,
}

const fn exact(value: u16, name: &'static str, meaning: &'static str) -> Entry {
    Entry {
        mask: 0xFFFF,
        value,
        name,
        meaning,
    }
}

const fn family(mask: u16, value: u16, name: &'static str, meaning: &'static str) -> Entry {
    Entry {
        mask,
        value,
        name,
        meaning,
    }
}

/// Exact entries first, then families: the first match wins.
const TABLE: &[Entry] = &[
    exact(
        0x9000,
        "SUCCESS",
        "normal processing, no further qualification",
    ),
    exact(
        0x6283,
        "SELECTED_FILE_INVALIDATED",
        "selected, but the card or application is locked",
    ),
    exact(
        0x6310,
        "MORE_DATA",
        "more data available: repeat the command asking for the next occurrence",
    ),
    exact(
        0x6581,
        "MEMORY_FAILURE",
        "memory failure: a write to persistent memory failed",
    ),
    exact(
        0x6700,
        "WRONG_LENGTH",
        "wrong length: Lc/Le inconsistent with the command or too long",
    ),
    exact(
        0x6881,
        "LOGICAL_CHANNEL_NOT_SUPPORTED",
        "logical channel not supported or not open",
    ),
    exact(
        0x6882,
        "SECURE_MESSAGING_NOT_SUPPORTED",
        "secure messaging not supported",
    ),
    exact(
        0x6883,
        "LAST_COMMAND_EXPECTED",
        "the last command of a chain was expected",
    ),
    exact(
        0x6884,
        "CHAINING_NOT_SUPPORTED",
        "command chaining not supported",
    ),
    exact(
        0x6982,
        "SECURITY_STATUS_NOT_SATISFIED",
        "security status not satisfied",
    ),
    exact(
        0x6983,
        "AUTH_METHOD_BLOCKED",
        "authentication method blocked",
    ),
    exact(
        0x6984,
        "REFERENCE_DATA_NOT_USABLE",
        "reference data not usable",
    ),
    exact(
        0x6985,
        "CONDITIONS_NOT_SATISFIED",
        "conditions of use not satisfied",
    ),
    exact(
        0x6999,
        "APPLET_SELECT_FAILED",
        "applet selection failed, or no applet is selected",
    ),
    exact(
        0x6A80,
        "WRONG_DATA",
        "incorrect parameters in the command data field",
    ),
    exact(0x6A81, "FUNCTION_NOT_SUPPORTED", "function not supported"),
    exact(0x6A82, "NOT_FOUND", "file or application not found"),
    exact(0x6A84, "NOT_ENOUGH_MEMORY", "not enough memory space"),
    exact(0x6A86, "INCORRECT_P1P2", "incorrect parameters P1-P2"),
    exact(
        0x6A88,
        "REFERENCED_DATA_NOT_FOUND",
        "referenced data or reference data not found",
    ),
    exact(
        0x6D00,
        "INS_NOT_SUPPORTED",
        "instruction code not supported or invalid",
    ),
    exact(0x6E00, "CLA_NOT_SUPPORTED", "class not supported"),
    exact(0x6F00, "UNKNOWN", "no precise diagnosis"),
    family(
        0xFF00,
        0x6100,
        "BYTES_REMAINING",
        "response bytes still available: GET RESPONSE with Le = SW2",
    ),
    family(
        0xFF00,
        0x6C00,
        "WRONG_LE",
        "wrong Le: SW2 is the exact number of bytes available",
    ),
    family(
        0xFFF0,
        0x63C0,
        "VERIFY_FAILED",
        "verification failed: SW2 low nibble is the number of tries left",
    ),
    family(
        0xFF00,
        0x6200,
        "WARNING",
        "warning: state of non-volatile memory unchanged",
    ),
    family(
        0xFF00,
        0x6300,
        "WARNING_CHANGED",
        "warning: state of non-volatile memory changed",
    ),
    family(
        0xFF00,
        0x6400,
        "EXECUTION_ERROR",
        "execution error: state of non-volatile memory unchanged",
    ),
    family(
        0xFF00,
        0x6500,
        "EXECUTION_ERROR_CHANGED",
        "execution error: state of non-volatile memory changed",
    ),
    family(
        0xFF00,
        0x6800,
        "CLA_FUNCTION_NOT_SUPPORTED",
        "functions in CLA not supported",
    ),
    family(0xFF00, 0x6900, "COMMAND_NOT_ALLOWED", "command not allowed"),
    family(0xFF00, 0x6A00, "WRONG_PARAMETERS", "wrong parameters P1-P2"),
];

impl StatusWord {
    /// 9000: success.
    pub const SUCCESS: Self = Self(0x9000);
    /// 6283: selected, but locked (GlobalPlatform: card life cycle is CARD_LOCKED).
    pub const SELECTED_FILE_INVALIDATED: Self = Self(0x6283);
    /// 6310: more data available (GET STATUS: ask for the next occurrence).
    pub const MORE_DATA: Self = Self(0x6310);
    /// 6581: memory failure.
    pub const MEMORY_FAILURE: Self = Self(0x6581);
    /// 6700: wrong length.
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// 6881: logical channel not supported / not open.
    pub const LOGICAL_CHANNEL_NOT_SUPPORTED: Self = Self(0x6881);
    /// 6882: secure messaging not supported.
    pub const SECURE_MESSAGING_NOT_SUPPORTED: Self = Self(0x6882);
    /// 6883: last command of the chain expected.
    pub const LAST_COMMAND_EXPECTED: Self = Self(0x6883);
    /// 6884: command chaining not supported.
    pub const CHAINING_NOT_SUPPORTED: Self = Self(0x6884);
    /// 6982: security status not satisfied.
    pub const SECURITY_STATUS_NOT_SATISFIED: Self = Self(0x6982);
    /// 6983: authentication method blocked.
    pub const AUTH_METHOD_BLOCKED: Self = Self(0x6983);
    /// 6985: conditions of use not satisfied.
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// 6999: applet selection failed.
    pub const APPLET_SELECT_FAILED: Self = Self(0x6999);
    /// 6A80: wrong data.
    pub const WRONG_DATA: Self = Self(0x6A80);
    /// 6A81: function not supported.
    pub const FUNCTION_NOT_SUPPORTED: Self = Self(0x6A81);
    /// 6A82: file or application not found.
    pub const NOT_FOUND: Self = Self(0x6A82);
    /// 6A84: not enough memory.
    pub const NOT_ENOUGH_MEMORY: Self = Self(0x6A84);
    /// 6A86: incorrect P1-P2.
    pub const INCORRECT_P1P2: Self = Self(0x6A86);
    /// 6A88: referenced data not found.
    pub const REFERENCED_DATA_NOT_FOUND: Self = Self(0x6A88);
    /// 6D00: instruction not supported.
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    /// 6E00: class not supported.
    pub const CLA_NOT_SUPPORTED: Self = Self(0x6E00);
    /// 6F00: no precise diagnosis.
    pub const UNKNOWN: Self = Self(0x6F00);

    /// 61xx: `remaining` bytes are available (SW2 = 00 means 256 or more).
    pub const fn bytes_remaining(remaining: usize) -> Self {
        let sw2 = if remaining >= 256 {
            0
        } else {
            remaining as u16
        };
        Self(0x6100 | sw2)
    }

    /// 63Cx: verification failed with `tries` tries left (at most 15 shown).
    pub const fn verify_failed(tries: u8) -> Self {
        let tries = if tries > 15 { 15 } else { tries };
        Self(0x63C0 | tries as u16)
    }

    /// Builds a status word from SW1 and SW2.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Self(u16::from_be_bytes([sw1, sw2]))
    }
    /// SW1 and SW2.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
    /// SW1.
    pub const fn sw1(self) -> u8 {
        self.to_bytes()[0]
    }
    /// SW2.
    pub const fn sw2(self) -> u8 {
        self.to_bytes()[1]
    }
    /// 9000.
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000
    }
    /// Warnings (62xx, 63xx): processing completed, response data is valid.
    pub const fn is_warning(self) -> bool {
        matches!(self.sw1(), 0x62 | 0x63)
    }
    /// Whether response data may accompany this status (success or a warning).
    pub const fn carries_data(self) -> bool {
        self.is_success() || self.is_warning()
    }

    fn entry(self) -> Option<&'static Entry> {
        TABLE.iter().find(|e| self.0 & e.mask == e.value)
    }
    /// A short upper-case name, `UNKNOWN_STATUS` when the word is not in the table.
    pub fn name(self) -> &'static str {
        self.entry().map_or("UNKNOWN_STATUS", |e| e.name)
    }
    /// What the status word means.
    pub fn meaning(self) -> &'static str {
        self.entry().map_or(
            "status word not defined by ISO 7816-4 or GlobalPlatform",
            |e| e.meaning,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_families() {
        assert_eq!(StatusWord(0x9000).name(), "SUCCESS");
        assert_eq!(StatusWord(0x6A82).name(), "NOT_FOUND");
        assert_eq!(StatusWord(0x6110).name(), "BYTES_REMAINING");
        assert_eq!(StatusWord(0x6C20).name(), "WRONG_LE");
        assert_eq!(StatusWord(0x63C2).name(), "VERIFY_FAILED");
        assert_eq!(StatusWord(0x6310).name(), "MORE_DATA");
        assert_eq!(StatusWord(0x1234).name(), "UNKNOWN_STATUS");
    }

    #[test]
    fn every_required_word_is_named() {
        for sw in [
            0x9000, 0x6100, 0x6C00, 0x6283, 0x6310, 0x6581, 0x6700, 0x6881, 0x6982, 0x6983, 0x6985,
            0x6999, 0x6A80, 0x6A82, 0x6A84, 0x6A86, 0x6A88, 0x6D00, 0x6E00, 0x6F00,
        ] {
            assert_ne!(StatusWord(sw).name(), "UNKNOWN_STATUS", "{sw:04X}");
        }
    }

    #[test]
    fn remaining_and_tries() {
        assert_eq!(StatusWord::bytes_remaining(300), StatusWord(0x6100));
        assert_eq!(StatusWord::bytes_remaining(0x42), StatusWord(0x6142));
        assert_eq!(StatusWord::verify_failed(2), StatusWord(0x63C2));
        assert!(StatusWord(0x6310).carries_data());
        assert!(!StatusWord(0x6A82).carries_data());
    }
}
