//! Bounded BER-TLV (ISO 7816-4 §5.2, the subset GlobalPlatform uses): tags of one or two bytes, definite
//! lengths of up to three bytes (`81 xx`, `82 xx xx`). Reading never panics; writing reports a full buffer.

/// A TLV that does not fit the bytes given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedTlv;

/// One data object: tag and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// One- or two-byte tag as a number (`4F`, `9F70`).
    pub tag: u16,
    /// The value bytes.
    pub value: &'a [u8],
}

/// Reads one TLV from the front of `bytes`, returning it and the rest.
pub fn read(bytes: &[u8]) -> Result<(Tlv<'_>, &[u8]), MalformedTlv> {
    let (&first, rest) = bytes.split_first().ok_or(MalformedTlv)?;
    let (tag, rest) = if first & 0x1F == 0x1F {
        let (&second, rest) = rest.split_first().ok_or(MalformedTlv)?;
        if second & 0x80 != 0 {
            return Err(MalformedTlv); // three-byte tags are not used here
        }
        (u16::from_be_bytes([first, second]), rest)
    } else {
        (u16::from(first), rest)
    };
    let (&len0, rest) = rest.split_first().ok_or(MalformedTlv)?;
    let (len, rest) = match len0 {
        0x00..=0x7F => (usize::from(len0), rest),
        0x81 => {
            let (&l, rest) = rest.split_first().ok_or(MalformedTlv)?;
            (usize::from(l), rest)
        }
        0x82 => match rest {
            [hi, lo, rest @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), rest),
            _ => return Err(MalformedTlv),
        },
        _ => return Err(MalformedTlv),
    };
    if rest.len() < len {
        return Err(MalformedTlv);
    }
    let (value, rest) = rest.split_at(len);
    Ok((Tlv { tag, value }, rest))
}

/// Iterates the TLVs of a byte string; stops at the first malformed one, which it yields as an error.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    rest: &'a [u8],
}

/// Iterates the TLVs in `bytes`.
pub fn iter(bytes: &[u8]) -> Iter<'_> {
    Iter { rest: bytes }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<Tlv<'a>, MalformedTlv>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match read(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Finds the first TLV with `tag` at the top level of `bytes`.
pub fn find(bytes: &[u8], tag: u16) -> Result<Option<&[u8]>, MalformedTlv> {
    for tlv in iter(bytes) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv.value));
        }
    }
    Ok(None)
}

/// Number of bytes the tag and length of a TLV with `len` value bytes take.
pub const fn header_len(tag: u16, len: usize) -> usize {
    let tag_len = if tag > 0xFF { 2 } else { 1 };
    let len_len = if len < 0x80 {
        1
    } else if len <= 0xFF {
        2
    } else {
        3
    };
    tag_len + len_len
}

/// A full output buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferFull;

/// Appends TLVs to a caller's buffer.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    /// A writer filling `buf` from the start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
    /// Appends raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), BufferFull> {
        let end = self.len.checked_add(bytes.len()).ok_or(BufferFull)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(BufferFull)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
    /// Appends a tag and length header for a value of `len` bytes (the value follows separately).
    pub fn header(&mut self, tag: u16, len: usize) -> Result<(), BufferFull> {
        match u8::try_from(tag) {
            Ok(short) => self.raw(&[short])?,
            Err(_) => self.raw(&tag.to_be_bytes())?,
        }
        match (u8::try_from(len), u16::try_from(len)) {
            (Ok(short), _) if short <= 0x7F => self.raw(&[short]),
            (Ok(short), _) => self.raw(&[0x81, short]),
            (Err(_), Ok(long)) => {
                let [hi, lo] = long.to_be_bytes();
                self.raw(&[0x82, hi, lo])
            }
            (Err(_), Err(_)) => Err(BufferFull),
        }
    }
    /// Appends a complete TLV.
    pub fn tlv(&mut self, tag: u16, value: &[u8]) -> Result<(), BufferFull> {
        self.header(tag, value.len())?;
        self.raw(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = [0u8; 600];
        let mut w = Writer::new(&mut buf);
        w.tlv(0x4F, &[1, 2, 3, 4, 5]).unwrap();
        w.tlv(0x9F70, &[7]).unwrap();
        w.tlv(0xC9, &[0xAA; 200]).unwrap();
        w.tlv(0x53, &[0xBB; 300]).unwrap();
        let bytes = w.written().to_vec();
        let all: Vec<_> = iter(&bytes).map(|t| t.unwrap()).collect();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[1],
            Tlv {
                tag: 0x9F70,
                value: &[7]
            }
        );
        assert_eq!(all[2].value.len(), 200);
        assert_eq!(all[3].value.len(), 300);
        assert_eq!(find(&bytes, 0x9F70), Ok(Some(&[7u8][..])));
        assert_eq!(header_len(0x53, 300), 4);
    }

    extern crate std;
    use std::vec::Vec;

    #[test]
    fn malformed() {
        assert_eq!(read(&[0x4F, 0x05, 1, 2]), Err(MalformedTlv));
        assert_eq!(read(&[0x9F]), Err(MalformedTlv));
        assert_eq!(read(&[0x4F, 0x83, 0, 0, 1]), Err(MalformedTlv));
        assert!(iter(&[0x4F, 0x01, 1, 0x4F]).any(|t| t.is_err()));
        let mut small = [0u8; 3];
        assert_eq!(Writer::new(&mut small).tlv(0x4F, &[1, 2]), Err(BufferFull));
    }
}
