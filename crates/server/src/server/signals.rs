//! SIGINT and SIGTERM as readiness on the loop's poll: the handlers write
//! to a pipe the loop reads, and are unregistered when the loop is
//! dropped (they are process-wide, and an embedder may start another).

use std::io::{self, Read};

use mio::{Interest, Registry, Token};

/// The signal pipe and the handlers that write to it.
pub(super) struct Signals {
    read: mio::net::UnixStream,
    ids: Vec<signal_hook::SigId>,
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
        };
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signals.ids.push(signal_hook::low_level::pipe::register(
                signal,
                write.try_clone()?,
            )?);
        }
        Ok(signals)
    }

    /// Reads what the handlers wrote: whether a signal came.
    pub(super) fn drain(&mut self) -> bool {
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
        any
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
