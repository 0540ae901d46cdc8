//! SIGINT and SIGTERM as readiness on the loop's poll: the handlers write
//! to a pipe the loop reads, and are unregistered when the loop is
//! dropped (they are process-wide, and an embedder may start another).
//! SIGTERM also sets a flag, because the two are handled apart: SIGTERM
//! is what a service manager or an orchestrator sends, and may drain
//! first (`Config::drain_delay`); SIGINT is someone at a terminal.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mio::{Interest, Registry, Token};

/// The signal pipe and the handlers that write to it.
pub(super) struct Signals {
    read: mio::net::UnixStream,
    ids: Vec<signal_hook::SigId>,
    /// Set by the SIGTERM handler, taken by [`Signals::drain`].
    terminate: Arc<AtomicBool>,
}

/// Which signals came since the pipe was last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Caught {
    /// None.
    Nothing,
    /// SIGINT alone.
    Interrupt,
    /// SIGTERM (perhaps SIGINT too).
    Terminate,
}

impl Signals {
    /// Registers the handlers, and the pipe's reading end under `token`.
    pub(super) fn register(registry: &Registry, token: Token) -> io::Result<Signals> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut read = mio::net::UnixStream::from_std(read);
        registry.register(&mut read, token, Interest::READABLE)?;
        let mut signals = Signals {
            read,
            ids: Vec::new(),
            terminate: Arc::new(AtomicBool::new(false)),
        };
        // Registered before the pipe's handler: a handler runs in the
        // order registered, so the flag is set once the loop wakes.
        signals.ids.push(signal_hook::flag::register(
            signal_hook::consts::SIGTERM,
            signals.terminate.clone(),
        )?);
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signals.ids.push(signal_hook::low_level::pipe::register(
                signal,
                write.try_clone()?,
            )?);
        }
        Ok(signals)
    }

    /// Reads what the handlers wrote: which signal came, if any.
    pub(super) fn drain(&mut self) -> Caught {
        let mut any = false;
        let mut buf = [0u8; 64];
        loop {
            match self.read.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => any = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        match (any, self.terminate.swap(false, Ordering::AcqRel)) {
            (false, _) => Caught::Nothing,
            (true, true) => Caught::Terminate,
            (true, false) => Caught::Interrupt,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
