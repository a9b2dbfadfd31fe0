//! A file's items kept in binary for the passes after the first: settlement and reconciliation read a file whole
//! (it is refused whole if any of it is wrong) before they import it, and would otherwise parse its XML twice.
//! The spool is an anonymous temporary file (gone when dropped, whatever happens), so memory stays small however
//! long the file is. Each item is a little-endian `u32` length and the item in postcard.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{InterchangeError, Result};

const BUFFER_BYTES: usize = 256 * 1024;

/// Items being spooled: [`Self::push`] each, then [`Self::into_items`] to read them back in order.
#[derive(Debug)]
pub struct Spool<T> {
    out: BufWriter<File>,
    count: u64,
    encoded: Vec<u8>,
    item: PhantomData<fn(T)>,
}

impl<T: Serialize + DeserializeOwned> Spool<T> {
    /// An empty spool in the system's temporary directory.
    pub fn new() -> Result<Self> {
        let file = tempfile::tempfile().map_err(InterchangeError::io("creating a spool file"))?;
        Ok(Self {
            out: BufWriter::with_capacity(BUFFER_BYTES, file),
            count: 0,
            encoded: Vec::with_capacity(256),
            item: PhantomData,
        })
    }

    pub fn push(&mut self, item: &T) -> Result<()> {
        self.encoded.clear();
        let encoded = postcard::to_extend(item, std::mem::take(&mut self.encoded))
            .map_err(|_| InterchangeError::Spool("an item cannot be encoded"))?;
        let length = u32::try_from(encoded.len())
            .map_err(|_| InterchangeError::Spool("an item is larger than 4 GiB"))?;
        self.out
            .write_all(&length.to_le_bytes())
            .and_then(|()| self.out.write_all(&encoded))
            .map_err(InterchangeError::io("writing a spool file"))?;
        self.encoded = encoded;
        self.count += 1;
        Ok(())
    }

    /// How many items were pushed.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The items, in the order they were pushed (the spool can be read again with [`SpoolItems::rewind`]).
    pub fn into_items(self) -> Result<SpoolItems<T>> {
        let mut file = self
            .out
            .into_inner()
            .map_err(|error| InterchangeError::io("writing a spool file")(error.into_error()))?;
        file.rewind()
            .map_err(InterchangeError::io("rewinding a spool file"))?;
        Ok(SpoolItems {
            input: BufReader::with_capacity(BUFFER_BYTES, file),
            count: self.count,
            left: self.count,
            encoded: Vec::with_capacity(256),
            item: PhantomData,
        })
    }
}

/// The spooled items, read back one at a time.
#[derive(Debug)]
pub struct SpoolItems<T> {
    input: BufReader<File>,
    count: u64,
    left: u64,
    encoded: Vec<u8>,
    item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> SpoolItems<T> {
    /// How many items the spool holds in all.
    pub fn total(&self) -> u64 {
        self.count
    }

    /// Back to the first item, for another pass.
    pub fn rewind(&mut self) -> Result<()> {
        self.input
            .rewind()
            .map_err(InterchangeError::io("rewinding a spool file"))?;
        self.left = self.count;
        Ok(())
    }

    fn read_next(&mut self) -> Result<T> {
        let mut length = [0u8; 4];
        self.input
            .read_exact(&mut length)
            .map_err(InterchangeError::io("reading a spool file"))?;
        let length = usize::try_from(u32::from_le_bytes(length))
            .map_err(|_| InterchangeError::Spool("an item is too large for this machine"))?;
        self.encoded.resize(length, 0);
        self.input
            .read_exact(&mut self.encoded)
            .map_err(InterchangeError::io("reading a spool file"))?;
        postcard::from_bytes(&self.encoded)
            .map_err(|_| InterchangeError::Spool("an item read back is not one that was written"))
    }
}

impl<T: DeserializeOwned> Iterator for SpoolItems<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = self.read_next();
        if item.is_err() {
            // A spool that cannot be read back ends here: nothing after a broken item is trusted.
            self.left = 0;
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_in_order_on_every_pass() {
        let mut spool = Spool::<(String, u64, Vec<[u8; 16]>)>::new().expect("a spool");
        let items: Vec<_> = (0..1_000u64)
            .map(|n| {
                (
                    format!("item {n}"),
                    n * 7,
                    vec![[n as u8; 16]; (n % 3) as usize],
                )
            })
            .collect();
        for item in &items {
            spool.push(item).expect("pushed");
        }
        assert_eq!(spool.len(), 1_000);
        let mut read = spool.into_items().expect("readable");
        let first: Vec<_> = read.by_ref().collect::<Result<_>>().expect("read back");
        assert_eq!(first, items);
        read.rewind().expect("rewound");
        assert_eq!(read.total(), 1_000);
        assert_eq!(read.collect::<Result<Vec<_>>>().expect("again"), items);
    }

    #[test]
    fn an_empty_spool_has_no_items() {
        let spool = Spool::<u64>::new().expect("a spool");
        assert!(spool.is_empty());
        assert_eq!(spool.into_items().expect("readable").total(), 0);
    }
}
