//! Byte strings in the records (`#[serde(with = "ledger::records::hex_bytes")]`): raw bytes in the binary
//! encoding, hex strings in JSON (what earlier versions wrote, and what a person reads; either case is read).

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0F)]));
    }
    text
}

fn decode(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Some(digit(*high)? << 4 | digit(*low)?),
            _ => None,
        })
        .collect()
}

pub fn serialize<S: Serializer>(
    bytes: &impl AsRef<[u8]>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&encode(bytes.as_ref()))
    } else {
        serializer.serialize_bytes(bytes.as_ref())
    }
}

/// Bytes as whichever form the format keeps them in.
fn bytes_of<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    if deserializer.is_human_readable() {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        decode(&text).ok_or_else(|| D::Error::custom("not hex"))
    } else {
        <serde_bytes_vec::Bytes>::deserialize(deserializer).map(|bytes| bytes.0)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
    deserializer: D,
) -> Result<T, D::Error> {
    T::try_from(bytes_of(deserializer)?).map_err(|_| D::Error::custom("wrong length"))
}

/// A byte string read through `deserialize_byte_buf` (serde reads `Vec<u8>` as a sequence otherwise).
mod serde_bytes_vec {
    use serde::de::{Deserialize, Deserializer, Visitor};

    pub struct Bytes(pub Vec<u8>);

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct BytesVisitor;
            impl Visitor<'_> for BytesVisitor {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a byte string")
                }
                fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(bytes.to_vec()))
                }
                fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(bytes))
                }
            }
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }
}

/// The same for an optional value.
pub mod option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Borrows the bytes so that `Option::serialize` calls the outer module's form.
    struct AsBytes<'a>(&'a [u8]);

    impl Serialize for AsBytes<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            super::serialize(&self.0, serializer)
        }
    }

    /// Reads through the outer module's form inside `Option`.
    struct OwnedBytes(Vec<u8>);

    impl<'de> Deserialize<'de> for OwnedBytes {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            super::bytes_of(deserializer).map(OwnedBytes)
        }
    }

    pub fn serialize<S: Serializer, T: AsRef<[u8]>>(
        bytes: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        bytes
            .as_ref()
            .map(|bytes| AsBytes(bytes.as_ref()))
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: TryFrom<Vec<u8>>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        use serde::de::Error as _;
        <Option<OwnedBytes>>::deserialize(deserializer)?
            .map(|bytes| T::try_from(bytes.0).map_err(|_| D::Error::custom("wrong length")))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        assert_eq!(super::encode(&[0x00, 0xAB, 0x7F]), "00ab7f");
        assert_eq!(super::decode("00ab7f"), Some(vec![0x00, 0xAB, 0x7F]));
        assert_eq!(super::decode("0"), None);
        assert_eq!(super::decode("zz"), None);
    }
}
