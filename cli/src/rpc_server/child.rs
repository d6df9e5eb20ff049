//! The ggml-rpc-server process: started with the release's library dir on its loader path,
//! its stderr relayed (and the last lines kept for error messages), and never left running
//! when this process goes away.
//!
//! - Ctrl-C in a terminal reaches both processes (same process group / console).
//! - Unix: SIGINT, SIGTERM and SIGHUP sent to this process alone are forwarded to the child;
//!   once it has exited, this process dies of the same signal ([`signals`]).
//! - Linux: the child also gets `PR_SET_PDEATHSIG` = SIGTERM, so even a SIGKILL of this
//!   process (which no handler sees) stops the server.
//! - Windows: the child is put in a job object that kills its processes when the job's last
//!   handle closes, which happens when this process exits however it exits.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::ctx::Ctx;
use crate::error::CliError;

use super::TOOL;

/// How many of the server's last stderr lines an error message quotes.
const TAIL_LINES: usize = 8;

/// The variable the dynamic loader searches for libraries, per OS.
const LOADER_PATH_VAR: &str = if cfg!(windows) {
    "PATH"
} else if cfg!(target_os = "macos") {
    "DYLD_LIBRARY_PATH"
} else {
    "LD_LIBRARY_PATH"
};

/// A running ggml-rpc-server.
pub struct Server {
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
    relay: Option<JoinHandle<()>>,
    #[cfg(windows)]
    _job: windows_job::Job,
}

impl Server {
    /// Starts `binary` with `args`. Its stdout goes to ours, or to stderr with `--json` (stdout
    /// then holds only the report), or nowhere with `--quiet`.
    pub fn start(
        binary: &Path,
        lib_dir: &Path,
        args: &[String],
        ctx: Ctx,
    ) -> Result<Server, CliError> {
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .env(LOADER_PATH_VAR, loader_path(lib_dir))
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        if ctx.quiet {
            cmd.stdout(Stdio::null());
        } else if ctx.json {
            cmd.stdout(std::io::stderr());
        }
        #[cfg(unix)]
        signals::install();
        #[cfg(target_os = "linux")]
        die_with_parent(&mut cmd);

        let mut child = cmd
            .spawn()
            .map_err(|e| CliError::new(format!("cannot start {}: {e}", binary.display())))?;
        #[cfg(unix)]
        signals::set_child(child.id());
        #[cfg(windows)]
        let job = windows_job::Job::kill_on_close(&child)
            .map_err(|e| CliError::new(format!("cannot put {TOOL} in a job object: {e}")))?;

        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let kept = tail.clone();
        let relay = std::thread::spawn(move || relay_lines(stderr, std::io::stderr(), &kept));
        Ok(Server {
            child,
            tail,
            relay: Some(relay),
            #[cfg(windows)]
            _job: job,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited (see [`Server::wait`] for signals).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, CliError> {
        let status = self
            .child
            .try_wait()
            .map_err(|e| CliError::new(format!("cannot watch {TOOL}: {e}")))?;
        if status.is_some() {
            self.exited();
        }
        Ok(status)
    }

    /// Waits until it exits. If it was stopped because this process got a signal, this
    /// process dies of that signal here and does not return.
    pub fn wait(&mut self) -> Result<ExitStatus, CliError> {
        let status = self
            .child
            .wait()
            .map_err(|e| CliError::new(format!("cannot wait for {TOOL}: {e}")))?;
        self.exited();
        Ok(status)
    }

    /// Kills it and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish_relay();
    }

    /// Its last lines on stderr (all of them once it has exited).
    pub fn stderr_tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn exited(&mut self) {
        self.finish_relay();
        #[cfg(unix)]
        if let Some(sig) = signals::received() {
            signals::reraise(sig);
        }
    }

    fn finish_relay(&mut self) {
        if let Some(relay) = self.relay.take() {
            let _ = relay.join();
        }
    }
}

impl Drop for Server {
    /// An early return (an error while it runs) must not leave the server behind.
    fn drop(&mut self) {
        if self.relay.is_some() {
            self.stop();
        }
    }
}

/// `lib_dir` first, then whatever the variable held. The official Linux and macOS binaries
/// find their libraries through their rpath (`$ORIGIN`, `@loader_path`) and Windows searches
/// the executable's folder first, so this matters for builds without an rpath (zip era, custom
/// builds); it also keeps a system-wide ggml from being picked up instead.
fn loader_path(lib_dir: &Path) -> OsString {
    let mut dirs = vec![lib_dir.to_path_buf()];
    if let Some(old) = std::env::var_os(LOADER_PATH_VAR) {
        dirs.extend(std::env::split_paths(&old));
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| lib_dir.as_os_str().to_owned())
}

/// Copies `from` to `to` line by line, keeping the last [`TAIL_LINES`] lines.
fn relay_lines(from: impl std::io::Read, mut to: impl Write, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(from);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let _ = to.write_all(&buf).and_then(|()| to.flush());
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line);
    }
}

/// Makes the kernel send SIGTERM to the child when the thread that spawned it (the main
/// thread, which lives as long as the process) dies.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs between fork and exec and calls only prctl and getppid, both
    // async-signal-safe; it allocates nothing (the error is built from a raw OS code).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl: then nobody would send the signal.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(unix)]
mod signals {
    //! Forwarding SIGINT/SIGTERM/SIGHUP to the server, then dying of the same signal.

    use std::sync::atomic::{AtomicI32, Ordering};

    const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    /// The server's pid, 0 before it started.
    static CHILD: AtomicI32 = AtomicI32::new(0);
    /// The first forwarded signal received, 0 if none.
    static RECEIVED: AtomicI32 = AtomicI32::new(0);

    extern "C" fn forward(sig: libc::c_int) {
        let _ = RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        let pid = CHILD.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe; pid is the server's (never 0 or -1, which
            // would signal a whole group).
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Installs the forwarding handler (before the server is spawned, so no signal is lost).
    pub fn install() {
        for sig in FORWARDED {
            // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags) that is then
            // filled in; `forward` only touches atomics and calls kill, which is
            // async-signal-safe. SA_RESTART keeps waitpid and reads going.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, std::ptr::null_mut());
            }
        }
    }

    /// Records the server's pid; a signal that came while it was being spawned is forwarded now.
    pub fn set_child(pid: u32) {
        let pid = i32::try_from(pid).unwrap_or(0);
        CHILD.store(pid, Ordering::SeqCst);
        let sig = RECEIVED.load(Ordering::SeqCst);
        if sig != 0 && pid > 0 {
            // SAFETY: kill has no memory-safety preconditions; pid is the server's.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// The signal that stopped us, if any.
    pub fn received() -> Option<libc::c_int> {
        match RECEIVED.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
    }

    /// Dies of `sig` (default action restored first), as if the handler had not been there.
    pub fn reraise(sig: libc::c_int) -> ! {
        // SAFETY: restoring the default disposition and raising a signal have no
        // memory-safety preconditions.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        // The three forwarded signals terminate by default; in case one is blocked:
        std::process::exit(128 + sig);
    }
}

#[cfg(windows)]
mod windows_job {
    //! A job object with JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE holding the server. This process
    //! keeps the only handle; when it exits (even through TerminateProcess) the handle closes
    //! and Windows kills the server.

    use std::os::windows::io::AsRawHandle;
    use std::process::Child;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
        SetInformationJobObject,
    };

    /// The job; closing it kills the server.
    pub struct Job(HANDLE);

    impl Job {
        /// Creates the job and assigns `child` to it.
        pub fn kill_on_close(child: &Child) -> std::io::Result<Job> {
            // SAFETY: null attributes and name are allowed; the handle is checked.
            let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
            if handle.is_null() {
                return Err(std::io::Error::last_os_error());
            }
            let job = Job(handle);
            // SAFETY: a zeroed JOBOBJECT_EXTENDED_LIMIT_INFORMATION is valid (no limits).
            let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
            info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            // SAFETY: `info` is the struct this information class expects, with its size.
            let ok = unsafe {
                SetInformationJobObject(
                    job.0,
                    JobObjectExtendedLimitInformation,
                    (&raw const info).cast(),
                    std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
                )
            };
            if ok == 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: both handles are valid for the duration of the call.
            let ok = unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle() as HANDLE) };
            if ok == 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(job)
        }
    }

    impl Drop for Job {
        fn drop(&mut self) {
            // SAFETY: the handle is owned by this value and closed once.
            unsafe { CloseHandle(self.0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_dir_comes_first_on_the_loader_path() {
        let dir = Path::new("/some/lib");
        let joined = loader_path(dir);
        let first = std::env::split_paths(&joined).next().unwrap();
        assert_eq!(first, dir);
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let tail = Mutex::new(VecDeque::new());
        let text: String = (0..20).map(|i| format!("line {i}\n\n")).collect();
        relay_lines(text.as_bytes(), std::io::sink(), &tail);
        let t: Vec<String> = tail.into_inner().unwrap().into();
        assert_eq!(t.len(), TAIL_LINES);
        assert_eq!(t.first().unwrap(), "line 12");
        assert_eq!(t.last().unwrap(), "line 19");
    }
}
