//! The WASI preview 1 host a Cargo module sees: stdin is the job input, stdout is read as
//! JSON lines and streamed while the module runs, stderr goes to the log (capped, see
//! [`super::stderr`]). There are no
//! preopened directories, environment, arguments or sockets: every other preview 1 call
//! answers `ENOSYS`, which is how WASI says "not available here".

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use tokio::sync::mpsc;
use tracing::debug;
use wasmtime::{Caller, Extern, FuncType, Linker, Module, Result, Val, ValType};

use crate::runtimes::cargo_io::{CargoEvent, parse_line};

/// The preview 1 module name.
pub const WASI: &str = "wasi_snapshot_preview1";

const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;
/// `filetype::character_device`
const CHARACTER_DEVICE: u8 = 2;

/// Why a module stopped without returning from `_start`.
#[derive(Debug, thiserror::Error)]
pub enum Stop {
    /// `proc_exit(code)`.
    #[error("exit code {0}")]
    Exit(i32),
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The wall-clock limit passed.
    #[error("timed out")]
    Timeout,
    /// Stdout grew past its cap.
    #[error("the Cargo wrote more than {0} bytes to stdout")]
    OutputLimit(u64),
    /// Memory growth past the limit.
    #[error("out of memory: the Cargo asked for {asked} MiB, the limit is {limit} MiB")]
    OutOfMemory {
        /// MiB asked for.
        asked: usize,
        /// MiB allowed.
        limit: usize,
    },
}

/// The per-instance state behind the host functions.
pub struct Host {
    pub(super) stdin: Vec<u8>,
    pub(super) stdin_pos: usize,
    pub(super) stdout: Vec<u8>,
    /// How much of `stdout` is known to hold no newline (so each write scans only new bytes).
    pub(super) stdout_scanned: usize,
    pub(super) stderr: crate::runtimes::stderr::StderrLog,
    pub(super) out_bytes: u64,
    pub(super) max_out: u64,
    pub(super) events: mpsc::Sender<CargoEvent>,
    pub(super) started: Instant,
    pub(super) memory_limit: usize,
    pub(super) job_id: String,
}

impl Host {
    fn write_stdout(&mut self, bytes: &[u8]) -> Result<()> {
        self.out_bytes += bytes.len() as u64;
        if self.out_bytes > self.max_out {
            return Err(Stop::OutputLimit(self.max_out).into());
        }
        self.stdout.extend_from_slice(bytes);
        while let Some(i) = self.stdout[self.stdout_scanned..].iter().position(|b| *b == b'\n') {
            let end = self.stdout_scanned + i;
            let line: Vec<u8> = self.stdout.drain(..=end).collect();
            self.stdout_scanned = 0;
            self.emit(&line)?;
        }
        self.stdout_scanned = self.stdout.len();
        Ok(())
    }

    /// Sends one stdout line as an event; waits while the agent is behind (no output is
    /// dropped), and stops the module if the job is gone.
    fn emit(&mut self, line: &[u8]) -> Result<()> {
        let text = String::from_utf8_lossy(line);
        match parse_line(&text) {
            Some(event) => self.events.blocking_send(event).map_err(|_| Stop::Cancelled.into()),
            None => {
                if !text.trim().is_empty() {
                    debug!(job_id = %self.job_id, line = %text.trim_end(), "non-protocol stdout line");
                }
                Ok(())
            }
        }
    }

    fn write_stderr(&mut self, bytes: &[u8]) {
        self.stderr.write(bytes);
    }

    /// Flushes a last stdout line that had no newline.
    pub(super) fn finish(&mut self) -> Result<()> {
        let rest = std::mem::take(&mut self.stdout);
        self.stdout_scanned = 0;
        self.stderr.finish();
        if !rest.is_empty() {
            self.emit(&rest)?;
        }
        Ok(())
    }
}

impl wasmtime::ResourceLimiter for Host {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool> {
        if desired > self.memory_limit {
            let mib = |b: usize| b.div_ceil(1 << 20);
            return Err(Stop::OutOfMemory { asked: mib(desired), limit: mib(self.memory_limit) }.into());
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

fn memory<'a>(caller: &mut Caller<'a, Host>) -> Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(anyhow!("the module exports no memory")),
    }
}

fn slice(data: &[u8], ptr: i32, len: i32) -> Option<&[u8]> {
    let start = usize::try_from(ptr as u32).ok()?;
    data.get(start..start.checked_add(len as u32 as usize)?)
}

fn put(data: &mut [u8], ptr: i32, bytes: &[u8]) -> bool {
    let start = ptr as u32 as usize;
    match data.get_mut(start..start.saturating_add(bytes.len())) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            true
        }
        None => false,
    }
}

/// Reads the `(ptr, len)` pairs of an iovec array.
fn iovecs(data: &[u8], iovs: i32, n: i32) -> Option<Vec<(i32, i32)>> {
    (0..n)
        .map(|i| {
            let at = iovs.checked_add(i.checked_mul(8)?)?;
            let raw = slice(data, at, 8)?;
            let ptr = i32::from_le_bytes(raw[..4].try_into().ok()?);
            let len = i32::from_le_bytes(raw[4..].try_into().ok()?);
            Some((ptr, len))
        })
        .collect()
}

fn fd_write(mut caller: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, nwritten: i32) -> Result<i32> {
    let mem = memory(&mut caller)?;
    let (data, host) = mem.data_and_store_mut(&mut caller);
    if !(1..=2).contains(&fd) {
        return Ok(EBADF);
    }
    let Some(vecs) = iovecs(data, iovs, n) else { return Ok(EFAULT) };
    let mut total: u32 = 0;
    for (ptr, len) in vecs {
        let Some(bytes) = slice(data, ptr, len) else { return Ok(EFAULT) };
        if fd == 1 {
            host.write_stdout(bytes)?;
        } else {
            host.write_stderr(bytes);
        }
        total = total.saturating_add(len as u32);
    }
    Ok(if put(data, nwritten, &total.to_le_bytes()) { ESUCCESS } else { EFAULT })
}

fn fd_read(mut caller: Caller<'_, Host>, fd: i32, iovs: i32, n: i32, nread: i32) -> Result<i32> {
    let mem = memory(&mut caller)?;
    let (data, host) = mem.data_and_store_mut(&mut caller);
    if fd != 0 {
        return Ok(EBADF);
    }
    let Some(vecs) = iovecs(data, iovs, n) else { return Ok(EFAULT) };
    let mut total: u32 = 0;
    for (ptr, len) in vecs {
        let rest = &host.stdin[host.stdin_pos..];
        let take = rest.len().min(len as u32 as usize);
        if !put(data, ptr, &rest[..take]) {
            return Ok(EFAULT);
        }
        host.stdin_pos += take;
        total += take as u32;
        if take < len as u32 as usize {
            break;
        }
    }
    Ok(if put(data, nread, &total.to_le_bytes()) { ESUCCESS } else { EFAULT })
}

fn fd_fdstat_get(mut caller: Caller<'_, Host>, fd: i32, out: i32) -> Result<i32> {
    if !(0..=2).contains(&fd) {
        return Ok(EBADF);
    }
    let mem = memory(&mut caller)?;
    let mut stat = [0u8; 24];
    stat[0] = CHARACTER_DEVICE;
    // Rights: fd_read (bit 1) for stdin, fd_write (bit 6) for stdout and stderr.
    let rights: u64 = if fd == 0 { 1 << 1 } else { 1 << 6 };
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    Ok(if put(mem.data_mut(&mut caller), out, &stat) { ESUCCESS } else { EFAULT })
}

fn write_u32s(mut caller: Caller<'_, Host>, values: &[(i32, u32)]) -> Result<i32> {
    let mem = memory(&mut caller)?;
    let data = mem.data_mut(&mut caller);
    Ok(if values.iter().all(|(ptr, v)| put(data, *ptr, &v.to_le_bytes())) { ESUCCESS } else { EFAULT })
}

fn clock_time_get(mut caller: Caller<'_, Host>, id: i32, _precision: i64, out: i32) -> Result<i32> {
    let ns: u64 = match id {
        0 => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
        1..=3 => caller.data().started.elapsed().as_nanos() as u64,
        _ => return Ok(EINVAL),
    };
    let mem = memory(&mut caller)?;
    Ok(if put(mem.data_mut(&mut caller), out, &ns.to_le_bytes()) { ESUCCESS } else { EFAULT })
}

fn clock_res_get(mut caller: Caller<'_, Host>, id: i32, out: i32) -> Result<i32> {
    if !(0..=3).contains(&id) {
        return Ok(EINVAL);
    }
    let mem = memory(&mut caller)?;
    Ok(if put(mem.data_mut(&mut caller), out, &1000u64.to_le_bytes()) { ESUCCESS } else { EFAULT })
}

fn random_get(mut caller: Caller<'_, Host>, buf: i32, len: i32) -> Result<i32> {
    let mem = memory(&mut caller)?;
    let data = mem.data_mut(&mut caller);
    let start = buf as u32 as usize;
    let Some(dst) = data.get_mut(start..start.saturating_add(len as u32 as usize)) else { return Ok(EFAULT) };
    getrandom::fill(dst).map_err(|e| anyhow!("no randomness: {e}"))?;
    Ok(ESUCCESS)
}

/// The preview 1 functions this host implements; the rest answer `ENOSYS`.
const PROVIDED: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_fdstat_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "proc_exit",
    "sched_yield",
    "fd_close",
    "fd_seek",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "args_sizes_get",
    "args_get",
    "environ_sizes_get",
    "environ_get",
];

/// A linker with this host's functions.
pub fn linker(engine: &wasmtime::Engine) -> Result<Linker<Host>> {
    let mut l = Linker::new(engine);
    l.func_wrap(WASI, "fd_write", fd_write)?;
    l.func_wrap(WASI, "fd_read", fd_read)?;
    l.func_wrap(WASI, "fd_fdstat_get", fd_fdstat_get)?;
    l.func_wrap(WASI, "clock_time_get", clock_time_get)?;
    l.func_wrap(WASI, "clock_res_get", clock_res_get)?;
    l.func_wrap(WASI, "random_get", random_get)?;
    l.func_wrap(WASI, "proc_exit", |code: i32| -> Result<()> { Err(Stop::Exit(code).into()) })?;
    l.func_wrap(WASI, "sched_yield", || -> i32 { ESUCCESS })?;
    l.func_wrap(WASI, "fd_close", |fd: i32| -> i32 {
        if (0..=2).contains(&fd) { ESUCCESS } else { EBADF }
    })?;
    l.func_wrap(WASI, "fd_seek", |fd: i32, _off: i64, _whence: i32, _out: i32| -> i32 {
        if (0..=2).contains(&fd) { ESPIPE } else { EBADF }
    })?;
    // No preopened directories: the first probe answers "bad descriptor", which ends the scan.
    l.func_wrap(WASI, "fd_prestat_get", |_fd: i32, _out: i32| -> i32 { EBADF })?;
    l.func_wrap(WASI, "fd_prestat_dir_name", |_fd: i32, _p: i32, _n: i32| -> i32 { EBADF })?;
    // No arguments and no environment.
    l.func_wrap(WASI, "args_sizes_get", |c: Caller<'_, Host>, n: i32, size: i32| write_u32s(c, &[(n, 0), (size, 0)]))?;
    l.func_wrap(WASI, "args_get", |_argv: i32, _buf: i32| -> i32 { ESUCCESS })?;
    l.func_wrap(WASI, "environ_sizes_get", |c: Caller<'_, Host>, n: i32, size: i32| {
        write_u32s(c, &[(n, 0), (size, 0)])
    })?;
    l.func_wrap(WASI, "environ_get", |_env: i32, _buf: i32| -> i32 { ESUCCESS })?;
    Ok(l)
}

/// Defines every other preview 1 function the module imports as answering `ENOSYS`, and
/// names the first import this host cannot satisfy at all.
pub fn fill_unsupported(linker: &mut Linker<Host>, module: &Module) -> Result<(), String> {
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        if m == WASI && PROVIDED.contains(&name) {
            continue;
        }
        let ty = import.ty().func().cloned();
        let errno_shaped = ty
            .as_ref()
            .is_some_and(|t: &FuncType| t.results().len() == 1 && matches!(t.results().next(), Some(ValType::I32)));
        if m != WASI || !errno_shaped {
            return Err(format!("the module imports {m}.{name}, which this sandbox does not provide"));
        }
        let ty = ty.expect("checked above");
        linker
            .func_new(m, name, ty, |_caller, _params, results| {
                results[0] = Val::I32(ENOSYS);
                Ok(())
            })
            .map_err(|e| format!("cannot stand in for {m}.{name}: {e}"))?;
    }
    Ok(())
}
