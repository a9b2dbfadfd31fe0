//! A file's items kept in binary for the passes after the first: settlement and reconciliation read a file whole
//! (it is refused whole if any of it is wrong) before they import it, and would otherwise parse its XML twice.
//! The spool is an anonymous temporary file (gone when dropped, whatever happens), so memory stays small however
//! long the file is. Each item is a little-endian `u32` length and the item in postcard.
//!
//! A spool can also be read while it is written ([`Spool::piped`]): one thread reads a file into it and another
//! takes the items as they are published, as far behind as it likes, without holding them in memory.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

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

    /// The items, in the order they were pushed.
    pub fn into_items(self) -> Result<SpoolItems<T>> {
        let mut file = self
            .out
            .into_inner()
            .map_err(|error| InterchangeError::io("writing a spool file")(error.into_error()))?;
        file.rewind()
            .map_err(InterchangeError::io("rewinding a spool file"))?;
        Ok(SpoolItems {
            input: BufReader::with_capacity(BUFFER_BYTES, file),
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
    left: u64,
    encoded: Vec<u8>,
    item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for SpoolItems<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = read_item(&mut self.input, &mut self.encoded);
        if item.is_err() {
            // A spool that cannot be read back ends here: nothing after a broken item is trusted.
            self.left = 0;
        }
        Some(item)
    }
}

impl<T: Serialize + DeserializeOwned> Spool<T> {
    /// A spool whose items a [`SpoolFollower`] (on another thread) reads as they are published.
    pub fn piped() -> Result<(PipedSpool<T>, SpoolFollower<T>)> {
        let spool = Self::new()?;
        let file = spool
            .out
            .get_ref()
            .try_clone()
            .map_err(InterchangeError::io("opening a spool file"))?;
        let (published, notices) = mpsc::channel();
        let follower = SpoolFollower {
            input: PositionalReader {
                file,
                position: 0,
                buffer: vec![0; BUFFER_BYTES],
                start: 0,
                end: 0,
                items_read: 0,
            },
            available: 0,
            notices,
            broken: false,
            encoded: Vec::with_capacity(256),
            item: PhantomData,
        };
        Ok((PipedSpool { spool, published }, follower))
    }
}

/// The writing end of [`Spool::piped`]: [`Self::push`] items, [`Self::publish`] them; dropping it ends the
/// follower's items.
#[derive(Debug)]
pub struct PipedSpool<T> {
    spool: Spool<T>,
    published: mpsc::Sender<u64>,
}

impl<T: Serialize + DeserializeOwned> PipedSpool<T> {
    pub fn push(&mut self, item: &T) -> Result<()> {
        self.spool.push(item)
    }

    /// Lets the follower read every item pushed so far.
    pub fn publish(&mut self) -> Result<()> {
        self.spool
            .out
            .flush()
            .map_err(InterchangeError::io("writing a spool file"))?;
        // A follower that went away needs nothing more.
        let _ = self.published.send(self.spool.count);
        Ok(())
    }
}

/// The reading end of [`Spool::piped`]: the items in order, each once it is published; it waits for more
/// until the writing end is dropped.
#[derive(Debug)]
pub struct SpoolFollower<T> {
    input: PositionalReader,
    /// Items published so far.
    available: u64,
    notices: mpsc::Receiver<u64>,
    /// An item could not be read back: nothing after it is trusted.
    broken: bool,
    encoded: Vec<u8>,
    item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Iterator for SpoolFollower<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.broken {
            return None;
        }
        while self.available == 0 {
            // The writer's count so far; the items before it are read from here on.
            let published = self.notices.recv().ok()?;
            self.available = published.saturating_sub(self.input.items_read);
        }
        self.available -= 1;
        self.input.items_read += 1;
        let item = read_item(&mut self.input, &mut self.encoded);
        if item.is_err() {
            self.broken = true;
            self.available = 0;
        }
        Some(item)
    }
}

/// Buffered reads at its own position of a file another handle is writing (the handles share an offset, which
/// positional reads leave alone).
#[derive(Debug)]
struct PositionalReader {
    file: File,
    position: u64,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    items_read: u64,
}

impl Read for PositionalReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.start == self.end {
            self.end = self.file.read_at(&mut self.buffer, self.position)?;
            self.start = 0;
            self.position += self.end as u64;
        }
        let length = out.len().min(self.end - self.start);
        out[..length].copy_from_slice(&self.buffer[self.start..self.start + length]);
        self.start += length;
        Ok(length)
    }
}

/// One item: its length, then its postcard bytes.
fn read_item<T: DeserializeOwned>(input: &mut impl Read, encoded: &mut Vec<u8>) -> Result<T> {
    let mut length = [0u8; 4];
    input
        .read_exact(&mut length)
        .map_err(InterchangeError::io("reading a spool file"))?;
    let length = usize::try_from(u32::from_le_bytes(length))
        .map_err(|_| InterchangeError::Spool("an item is too large for this machine"))?;
    encoded.resize(length, 0);
    input
        .read_exact(encoded)
        .map_err(InterchangeError::io("reading a spool file"))?;
    postcard::from_bytes(encoded)
        .map_err(|_| InterchangeError::Spool("an item read back is not one that was written"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_in_order() {
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
        let read = spool.into_items().expect("readable");
        assert_eq!(read.collect::<Result<Vec<_>>>().expect("read back"), items);
    }

    #[test]
    fn a_follower_reads_what_is_published_while_the_spool_is_written() {
        let (mut spool, follower) = Spool::<(u64, String)>::piped().expect("a piped spool");
        let items: Vec<_> = (0..50_000u64)
            .map(|n| (n, "x".repeat((n % 40) as usize)))
            .collect();
        let reader = std::thread::spawn(move || follower.collect::<Result<Vec<_>>>());
        for (index, item) in items.iter().enumerate() {
            spool.push(item).expect("pushed");
            if index % 7_000 == 0 {
                spool.publish().expect("published");
            }
        }
        spool.publish().expect("published");
        drop(spool);
        assert_eq!(reader.join().expect("no panic").expect("read"), items);
    }

    #[test]
    fn a_follower_ends_where_the_writer_stopped_publishing() {
        let (mut spool, follower) = Spool::<u64>::piped().expect("a piped spool");
        for n in 0..10 {
            spool.push(&n).expect("pushed");
        }
        spool.publish().expect("published");
        // Pushed but never published: the writer stopped (its reading failed) before saying so.
        spool.push(&10).expect("pushed");
        drop(spool);
        let read: Vec<u64> = follower.collect::<Result<_>>().expect("read");
        assert_eq!(read, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn an_empty_spool_has_no_items() {
        let spool = Spool::<u64>::new().expect("a spool");
        assert!(spool.is_empty());
        assert_eq!(spool.into_items().expect("readable").count(), 0);
    }
}
