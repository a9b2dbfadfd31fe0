//! What the firmware asks of the host through semihosting (ARM's debug-trap interface, which QEMU answers when
//! started with `-semihosting-config enable=on,target=native`): its command line, a file, the console.
//! On a board without a debugger these calls would fault: the emulated board is the only one this firmware targets.

use cortex_m_semihosting::{nr, syscall, syscall1};

/// The longest command line read.
pub const MAX_COMMAND_LINE: usize = 256;

/// QEMU's `-semihosting-config ...,arg=A,arg=B` as one line, "A B". `None` without one.
pub fn command_line(buffer: &mut [u8; MAX_COMMAND_LINE]) -> Option<&str> {
    let mut block = [buffer.as_mut_ptr() as usize, buffer.len()];
    // SAFETY: SYS_GET_CMDLINE takes the address of `block` (buffer, size), writes at most that many bytes into
    // the buffer we own and the length into `block[1]`.
    let failed = unsafe { syscall1!(GET_CMDLINE, block.as_mut_ptr()) } != 0;
    let length = block[1];
    if failed {
        return None;
    }
    core::str::from_utf8(buffer.get(..length)?).ok()
}

/// A file on the host, named by its path and opened for each operation, then closed: QEMU keeps the files a guest
/// opened across a reset of the board, so handles kept over a start would pile up with every reset.
#[derive(Clone)]
pub struct HostFile {
    /// The path, NUL-terminated as SYS_OPEN wants it.
    name: heapless::Vec<u8, MAX_COMMAND_LINE>,
}

/// A file opened for one operation, closed when dropped.
struct Open(usize);

impl Drop for Open {
    fn drop(&mut self) {
        // SAFETY: SYS_CLOSE only releases the host's handle, which nothing else uses.
        unsafe { syscall!(CLOSE, self.0) };
    }
}

impl HostFile {
    /// The file at `path`, created (empty) when it does not exist; `None` when the host cannot open it.
    pub fn new(path: &str) -> Option<Self> {
        let mut name = heapless::Vec::new();
        name.extend_from_slice(path.as_bytes()).ok()?;
        name.push(0).ok()?;
        let file = Self { name };
        // "r+b" keeps an existing file; "w+b" creates a missing one.
        drop(
            file.open(nr::open::RW_BINARY)
                .or_else(|| file.open(nr::open::RW_TRUNC_BINARY))?,
        );
        Some(file)
    }

    fn open(&self, mode: usize) -> Option<Open> {
        // SAFETY: `name` lives across the call and is NUL-terminated; the length excludes the NUL.
        let handle = unsafe { syscall!(OPEN, self.name.as_ptr(), mode, self.name.len() - 1) };
        (handle != usize::MAX).then_some(Open(handle))
    }

    /// The file's length.
    pub fn len(&self) -> Option<usize> {
        let file = self.open(nr::open::R_BINARY)?;
        // SAFETY: SYS_FLEN only reads the handle.
        let length = unsafe { syscall!(FLEN, file.0) };
        (length != usize::MAX).then_some(length)
    }

    /// Reads `buffer.len()` bytes at `offset`; `false` when the file is shorter or the host fails.
    pub fn read_at(&self, offset: usize, buffer: &mut [u8]) -> bool {
        let Some(file) = self.open(nr::open::R_BINARY) else {
            return false;
        };
        // SAFETY: SYS_READ writes at most `buffer.len()` bytes into `buffer`, and answers how many it did not.
        seek(&file, offset)
            && unsafe { syscall!(READ, file.0, buffer.as_mut_ptr(), buffer.len()) } == 0
    }

    /// Writes `bytes` at `offset`; `false` when the host fails.
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> bool {
        let Some(file) = self.open(nr::open::RW_BINARY) else {
            return false;
        };
        // SAFETY: SYS_WRITE only reads `bytes`.
        seek(&file, offset) && unsafe { syscall!(WRITE, file.0, bytes.as_ptr(), bytes.len()) } == 0
    }
}

fn seek(file: &Open, offset: usize) -> bool {
    // SAFETY: SYS_SEEK only moves the host file's position.
    unsafe { syscall!(SEEK, file.0, offset) == 0 }
}
