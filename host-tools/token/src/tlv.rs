//! Strict BER-TLV for the body and plaintext: one encoding per value (minimal lengths), as the envelope uses.

use apdu_spec::tlv;

/// Appends `tag` ‖ minimal length ‖ `value`. Values here are far below 65536 bytes (bounded fields).
pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    match u8::try_from(tag) {
        Ok(short) => out.push(short),
        Err(_) => out.extend_from_slice(&tag.to_be_bytes()),
    }
    let len = value.len();
    match (u8::try_from(len), u16::try_from(len)) {
        (Ok(short), _) if short <= 0x7F => out.push(short),
        (Ok(short), _) => out.extend_from_slice(&[0x81, short]),
        (Err(_), Ok(long)) => {
            out.push(0x82);
            out.extend_from_slice(&long.to_be_bytes());
        }
        // Unreachable with bounded fields; an over-long value would fail to open, never pass silently.
        (Err(_), Err(_)) => out.extend_from_slice(&[0x82, 0xFF, 0xFF]),
    }
    out.extend_from_slice(value);
}

/// Reads one TLV with `tag` and a minimal length: its value, its whole TLV, and the bytes after it.
pub(crate) fn read_exact(bytes: &[u8], tag: u16) -> Option<(&[u8], &[u8], &[u8])> {
    let (read, rest) = tlv::read(bytes).ok()?;
    let whole = bytes.get(..bytes.len().checked_sub(rest.len())?)?;
    let minimal = whole.len() == tlv::header_len(tag, read.value.len()) + read.value.len();
    (read.tag == tag && minimal).then_some((read.value, whole, rest))
}
