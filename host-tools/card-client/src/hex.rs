//! Hex formatting shared by traces and reports.

const DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'A', 'B', 'C', 'D', 'E', 'F',
];

/// Upper-case hex bytes separated by single spaces: `00 A4 04 00`.
pub fn spaced(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 3);
    for (i, &byte) in bytes.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        text.push(DIGITS[usize::from(byte >> 4)]);
        text.push(DIGITS[usize::from(byte & 0x0F)]);
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
