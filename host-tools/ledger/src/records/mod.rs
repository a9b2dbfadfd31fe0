//! The domain crates' keyed records as values: [`encode`] writes [`BINARY_RECORD`] ‖ postcard, about a third of
//! the JSON's size (a group commit writes fewer pages, and a settlement spends less time serializing); [`decode`]
//! also reads the JSON records earlier versions wrote, which begin with `{`.

pub mod hex_bytes;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The first byte of a record in the binary encoding.
pub const BINARY_RECORD: u8 = 0x01;

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordDecodeError {
    #[error("binary record")]
    Binary(#[from] postcard::Error),
    #[error("JSON record")]
    Json(#[from] serde_json::Error),
    #[error("neither a binary nor a JSON record")]
    UnknownFormat,
}

/// A record in the binary encoding.
pub fn encode(value: &impl Serialize) -> Vec<u8> {
    // Serializing the records' plain structs into memory cannot fail (postcard refuses only what serde cannot
    // describe without a length, which no record type has: their round-trip tests would fail).
    postcard::to_extend(value, vec![BINARY_RECORD]).unwrap_or_default()
}

/// A record in either encoding.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RecordDecodeError> {
    match bytes.split_first() {
        Some((&BINARY_RECORD, rest)) => Ok(postcard::from_bytes(rest)?),
        Some((b'{', _)) => Ok(serde_json::from_slice(bytes)?),
        _ => Err(RecordDecodeError::UnknownFormat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        #[serde(with = "hex_bytes")]
        key: Vec<u8>,
        #[serde(with = "hex_bytes::option")]
        tag: Option<[u8; 2]>,
        amount: u64,
    }

    fn sample() -> Sample {
        Sample {
            name: "CH-000042".into(),
            key: vec![0x04, 0xAB, 0xCD],
            tag: Some([0xEE, 0x01]),
            amount: 25_000,
        }
    }

    #[test]
    fn records_are_binary_and_round_trip() {
        let bytes = encode(&sample());
        assert_eq!(bytes.first(), Some(&BINARY_RECORD));
        // Bytes stay bytes: the key is 3 bytes long, not 6 hex digits.
        assert!(bytes.windows(3).any(|w| w == [0x04, 0xAB, 0xCD]));
        assert!(bytes.len() < serde_json::to_vec(&sample()).unwrap().len() / 2);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), sample());
    }

    #[test]
    fn json_records_of_earlier_versions_are_read_in_either_case_of_hex() {
        for json in [
            &br#"{"name":"CH-000042","key":"04abcd","tag":"ee01","amount":25000}"#[..],
            br#"{"name":"CH-000042","key":"04ABCD","tag":"EE01","amount":25000}"#,
        ] {
            assert_eq!(decode::<Sample>(json).unwrap(), sample());
        }
    }

    #[test]
    fn damaged_records_are_refused() {
        assert!(matches!(
            decode::<Sample>(b""),
            Err(RecordDecodeError::UnknownFormat)
        ));
        assert!(matches!(
            decode::<Sample>(b"\x02junk"),
            Err(RecordDecodeError::UnknownFormat)
        ));
        assert!(matches!(
            decode::<Sample>(b"{\"name\""),
            Err(RecordDecodeError::Json(_))
        ));
        assert!(matches!(
            decode::<Sample>(&[BINARY_RECORD, 0xFF]),
            Err(RecordDecodeError::Binary(_))
        ));
    }
}
