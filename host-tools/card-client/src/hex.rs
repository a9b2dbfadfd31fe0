//! Hex formatting shared by traces and reports.

use std::fmt::Write as _;

/// Upper-case hex bytes separated by single spaces: `00 A4 04 00`.
pub fn spaced(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02X}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes() {
        assert_eq!(spaced(&[]), "");
        assert_eq!(spaced(&[0x00, 0xA4, 0x0f]), "00 A4 0F");
    }
}
