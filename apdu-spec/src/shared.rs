//! Messages applets exchange through shareable interfaces. The runtime carries bytes; both sides agree on these
//! typed messages, encoded with postcard (compact, no allocator), so an applet never names another applet's crate.

use serde::{Deserialize, Serialize};

/// A message that cannot be encoded (the buffer is too small) or decoded (malformed bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadMessage;

/// Encodes `message` into `buf`, returning the bytes used.
pub fn encode<'b, T: Serialize>(
    message: &T,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], BadMessage> {
    postcard::to_slice(message, buf).map_err(|_| BadMessage)
}

/// Decodes a whole message; trailing bytes are an error.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, BadMessage> {
    match postcard::take_from_bytes(bytes) {
        Ok((message, [])) => Ok(message),
        _ => Err(BadMessage),
    }
}

/// Requests the loopback applet serves on its shareable interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoopbackRequest<'a> {
    /// Answer the caller's AID (as the runtime stamped it) followed by `note`.
    WhoCalls {
        /// Bytes echoed after the AID.
        note: &'a [u8],
    },
    /// Store `data` as record `key` in the server's own records.
    Store {
        /// Record key.
        key: u8,
        /// Record data.
        data: &'a [u8],
    },
}

/// Requests the bank applet serves on its shareable interface (patent Fig. 14), to the one credit applet
/// instance named at its personalization (the runtime-stamped caller AID is checked on every call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankRequest<'a> {
    /// Hand over the first stored token of `credit_id` bound to `card_binding` and not expired on the card
    /// date: the bank applet gives its records of that token to the caller, which receives them as its
    /// records `first_key`, `first_key + 1`, … (`token_store` layout); the answer is a [`HandOver`]. Made
    /// inside the caller's store transaction, the move is part of it.
    HandOver {
        /// The credit company of the caller.
        credit_id: &'a [u8],
        /// The caller's card binding (SHA-256 of its public signing key).
        card_binding: [u8; 32],
        /// The caller's record key for the token's first record.
        first_key: u8,
    },
}

/// The bank applet's answer to [`BankRequest::HandOver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandOver {
    /// No stored token matches.
    Nothing,
    /// The token with this id is now the caller's.
    Token {
        /// The token id (clear header).
        token_id: [u8; 16],
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wire_format() {
        let mut buf = [0u8; 16];
        let bytes = encode(
            &LoopbackRequest::WhoCalls {
                note: &[0x12, 0x34],
            },
            &mut buf,
        )
        .unwrap();
        assert_eq!(bytes, &[0x00, 0x02, 0x12, 0x34]);
        let bytes: Vec<u8> = encode(
            &LoopbackRequest::Store {
                key: 7,
                data: b"ab",
            },
            &mut buf,
        )
        .unwrap()
        .to_vec();
        assert_eq!(bytes, [0x01, 0x07, 0x02, b'a', b'b']);
        assert_eq!(
            decode::<LoopbackRequest<'_>>(&bytes),
            Ok(LoopbackRequest::Store {
                key: 7,
                data: b"ab"
            })
        );
        assert_eq!(
            decode::<LoopbackRequest<'_>>(&[0x01, 0x07, 0x05, b'a']),
            Err(BadMessage)
        );
        assert_eq!(
            decode::<LoopbackRequest<'_>>(&[0x00, 0x00, 0xFF]),
            Err(BadMessage),
            "trailing bytes"
        );
        assert_eq!(decode::<LoopbackRequest<'_>>(&[0x09]), Err(BadMessage));
        assert_eq!(
            encode(
                &LoopbackRequest::Store {
                    key: 1,
                    data: &[0; 20]
                },
                &mut buf
            ),
            Err(BadMessage)
        );
    }

    extern crate std;
    use std::vec::Vec;

    #[test]
    fn bank_hand_over_wire_format() {
        let mut buf = [0u8; 64];
        let request = BankRequest::HandOver {
            credit_id: b"C1",
            card_binding: [0xAB; 32],
            first_key: 0x13,
        };
        let bytes = encode(&request, &mut buf).unwrap().to_vec();
        // Variant 0, the id with its length, the 32 binding bytes as they are, the key.
        assert_eq!(&bytes[..4], &[0x00, 0x02, b'C', b'1']);
        assert_eq!(&bytes[4..36], &[0xAB; 32]);
        assert_eq!(bytes[36..], [0x13]);
        assert_eq!(decode::<BankRequest<'_>>(&bytes), Ok(request));
        let answer = HandOver::Token { token_id: [5; 16] };
        let bytes = encode(&answer, &mut buf).unwrap().to_vec();
        assert_eq!(bytes.len(), 17);
        assert_eq!(decode::<HandOver>(&bytes), Ok(answer));
        assert_eq!(encode(&HandOver::Nothing, &mut buf).unwrap(), &[0x00]);
    }
}
