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

/// A file on the host, open for reading and writing.
#[derive(Clone, Copy)]
pub struct HostFile(usize);

impl HostFile {
    /// Opens `path` read-write without truncating ("r+b"), or creates it ("w+b") when it does not exist.
    pub fn open(path: &str) -> Option<Self> {
        // SYS_OPEN takes a NUL-terminated name with its length.
        let mut name = heapless::Vec::<u8, 256>::new();
        name.extend_from_slice(path.as_bytes()).ok()?;
        name.push(0).ok()?;
        for mode in [nr::open::RW_BINARY, nr::open::RW_TRUNC_BINARY] {
            // SAFETY: `name` lives across the call and is NUL-terminated; the length excludes the NUL.
            let handle = unsafe { syscall!(OPEN, name.as_ptr(), mode, path.len()) };
            if handle != usize::MAX {
                return Some(Self(handle));
            }
        }
        None
    }

    /// Reads `buffer.len()` bytes at `offset`; `false` when the file is shorter or the host fails.
    pub fn read_at(self, offset: usize, buffer: &mut [u8]) -> bool {
        // SAFETY: SYS_READ writes at most `buffer.len()` bytes into `buffer`, and answers how many it did not.
        self.seek(offset)
            && unsafe { syscall!(READ, self.0, buffer.as_mut_ptr(), buffer.len()) } == 0
    }

    /// Writes `bytes` at `offset`; `false` when the host fails.
    pub fn write_at(self, offset: usize, bytes: &[u8]) -> bool {
        // SAFETY: SYS_WRITE only reads `bytes`.
        self.seek(offset) && unsafe { syscall!(WRITE, self.0, bytes.as_ptr(), bytes.len()) } == 0
    }

    fn seek(self, offset: usize) -> bool {
        // SAFETY: SYS_SEEK only moves the host file's position.
        unsafe { syscall!(SEEK, self.0, offset) == 0 }
    }
}
