//! QEMU running the firmware: the `mps2-an386` board with a Cortex-M4, UART0 on a TCP port (the card's contact
//! line), QMP on another (to reset the board, as a reader resets a card), semihosting for the firmware's state
//! files and its console (logged here). Both ports are on 127.0.0.1 only. Dropping [`Qemu`] stops the process.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tracing::{debug, info};

/// The firmware's command-line buffer (`firmware/src/host.rs`).
const MAX_COMMAND_LINE: usize = 256;
/// How long QEMU may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why QEMU could not run the firmware.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error(
        "cannot start {program}: {source} (install Debian's qemu-system-arm, or name the program with --qemu)"
    )]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("QEMU did not open its {what} port within {START_TIMEOUT:?}: {detail}")]
    NotListening { what: &'static str, detail: String },
    #[error("QEMU's monitor (QMP) failed: {0}")]
    Monitor(String),
    #[error(
        "{0}: the firmware's semihosting command line cannot carry it (no spaces or commas, {MAX_COMMAND_LINE} bytes in all)"
    )]
    UnusablePath(PathBuf),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// `qemu-system-arm`, or another path.
    pub program: PathBuf,
    /// The firmware ELF.
    pub firmware: PathBuf,
    /// The card state file the firmware keeps its memory in.
    pub state_file: PathBuf,
    /// The seed file of its random generator.
    pub seed_file: PathBuf,
    /// Run with `-icount shift=0` (one instruction, one nanosecond of the board's time) and have the firmware log
    /// each command's instruction count.
    pub count_instructions: bool,
}

/// A running QEMU.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    /// The UART's connection.
    pub serial: TcpStream,
    monitor: BufReader<TcpStream>,
}

impl Qemu {
    /// Starts QEMU and connects to its UART and its monitor.
    pub fn start(config: &QemuConfig) -> Result<Self, QemuError> {
        // "linkcard-firmware STATE SEED count", read by the firmware into MAX_COMMAND_LINE bytes; QEMU's option
        // syntax splits at commas and the firmware at spaces.
        let line =
            18 + config.state_file.as_os_str().len() + 1 + config.seed_file.as_os_str().len() + 6;
        for path in [&config.state_file, &config.seed_file] {
            let text = path.to_string_lossy();
            if text.contains([' ', ',']) || line >= MAX_COMMAND_LINE {
                return Err(QemuError::UnusablePath(path.clone()));
            }
        }
        let serial_port = free_port()?;
        let monitor_port = free_port()?;
        let mut command = Command::new(&config.program);
        if config.count_instructions {
            command.args(["-icount", "shift=0"]);
        }
        let mut child = command
            .args([
                "-M",
                "mps2-an386",
                "-cpu",
                "cortex-m4",
                "-nographic",
                "-monitor",
                "none",
            ])
            .arg("-serial")
            .arg(format!(
                "tcp:127.0.0.1:{serial_port},server=on,wait=off,nodelay=on"
            ))
            .arg("-qmp")
            .arg(format!("tcp:127.0.0.1:{monitor_port},server=on,wait=off"))
            .arg("-semihosting-config")
            .arg(format!(
                "enable=on,target=native,arg=linkcard-firmware,arg={},arg={}{}",
                config.state_file.display(),
                config.seed_file.display(),
                if config.count_instructions {
                    ",arg=count"
                } else {
                    ""
                }
            ))
            .arg("-kernel")
            .arg(&config.firmware)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| QemuError::Spawn {
                program: config.program.display().to_string(),
                source,
            })?;
        log_output(&mut child);
        let connected = connect(&mut child, serial_port, "UART").and_then(|serial| {
            serial.set_nodelay(true)?;
            let monitor = connect(&mut child, monitor_port, "QMP")?;
            Ok((serial, monitor))
        });
        let (serial, monitor) = match connected {
            Ok(pair) => pair,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        };
        let mut qemu = Self {
            child,
            serial,
            monitor: BufReader::new(monitor),
        };
        qemu.monitor_greeting()?;
        Ok(qemu)
    }

    /// Resets the board: the firmware starts again and sends its ATR.
    pub fn reset(&mut self) -> Result<(), QemuError> {
        self.execute("system_reset")
    }

    fn monitor_greeting(&mut self) -> Result<(), QemuError> {
        let mut greeting = String::new();
        self.monitor.read_line(&mut greeting)?;
        if !greeting.contains("\"QMP\"") {
            return Err(QemuError::Monitor(format!(
                "unexpected greeting {greeting:?}"
            )));
        }
        self.execute("qmp_capabilities")
    }

    /// Runs one QMP command and waits for its `return` (events on the way are skipped).
    fn execute(&mut self, command: &str) -> Result<(), QemuError> {
        let stream = self.monitor.get_mut();
        writeln!(stream, "{{\"execute\":\"{command}\"}}")?;
        loop {
            let mut line = String::new();
            if self.monitor.read_line(&mut line)? == 0 {
                return Err(QemuError::Monitor("QEMU closed its monitor".into()));
            }
            if line.contains("\"return\"") {
                return Ok(());
            }
            if line.contains("\"error\"") {
                return Err(QemuError::Monitor(format!("{command}: {}", line.trim())));
            }
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now (QEMU binds it a moment later).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Connects to QEMU's `port` once it listens; fails if QEMU exits first or takes too long.
fn connect(child: &mut Child, port: u16, what: &'static str) -> Result<TcpStream, QemuError> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
            Ok(stream) => return Ok(stream),
            Err(error) => {
                if let Some(status) = child.try_wait()? {
                    return Err(QemuError::NotListening {
                        what,
                        detail: format!("QEMU exited ({status}); its messages are in the log"),
                    });
                }
                if Instant::now() > deadline {
                    return Err(QemuError::NotListening {
                        what,
                        detail: error.to_string(),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// The firmware's console (semihosting) and QEMU's own messages, line by line into the log.
fn log_output(child: &mut Child) {
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                info!("{line}");
            }
        });
    }
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                debug!("qemu: {line}");
            }
        });
    }
}
