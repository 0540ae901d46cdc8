//! `floor_uring`: the floor (`src/bin/floor.rs`) on io_uring instead of
//! epoll, to measure what batching the system calls would give: the same
//! work per frame (`tether_benches::floor`: the handshake, the unmask, a
//! server header over the client's), but every receive and send is a
//! request on one ring, and one `io_uring_enter` per turn of the loop
//! submits all of that turn's requests and waits for the next completions.
//! Where the epoll floor makes a `read` and a `write` per echoed message,
//! this one makes one system call per turn for all the connections that
//! turn served.
//!
//! One thread, one ring (no kernel polling thread: that would spend a
//! second core). Each connection keeps one receive in flight into a buffer
//! of its own (a partial frame stays at its start), and one send: what is
//! echoed while a send is in flight waits in a second buffer and goes out
//! when that send completes. The echo is copied out of the receive buffer
//! (which the next receive reuses at once); the epoll floor writes it from
//! the read buffer. A connection with more than 4 MiB waiting is not read
//! until its sends catch up.
//!
//! ```text
//! floor_uring 9001        # prints "listening on 127.0.0.1:9001"
//! ```
// A measuring and testing tool, not a server: it panics where it cannot go on, and indexes its own buffers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::process::ExitCode;

#[cfg(target_os = "linux")]
mod uring {
    use std::io::{self, Write as _};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, FromRawFd};

    use io_uring::{IoUring, opcode, squeue, types};
    use tether_benches::floor::{MAX_HEAD, MAX_PAYLOAD, echo_frames, handshake};

    /// Submission queue entries; completions get twice as many.
    const RING_ENTRIES: u32 = 4096;
    /// A connection's receive buffer to begin with; it grows to hold the
    /// largest frame taken.
    const RECV_BUF: usize = 64 * 1024;
    /// Room for a whole frame of `MAX_PAYLOAD` (header included) and more.
    const MAX_RECV_BUF: usize = MAX_PAYLOAD + 64 * 1024;
    /// Output waiting beyond which a connection is not read.
    const MAX_OUT: usize = 4 * 1024 * 1024;
    /// The user data of the listener's accept.
    const ACCEPT: u64 = u64::MAX;
    const RECV: u64 = 0;
    const SEND: u64 = 1;

    struct Conn {
        stream: TcpStream,
        upgraded: bool,
        /// Received bytes not yet echoed (a partial frame) at the start,
        /// then room for the receive in flight.
        buf: Vec<u8>,
        filled: usize,
        /// The bytes of the send in flight, and how many went.
        sending: Vec<u8>,
        sent: usize,
        /// Echoed while a send was in flight.
        pending: Vec<u8>,
        recv_in_flight: bool,
        send_in_flight: bool,
        /// A close was echoed: end once it is sent.
        closing: bool,
        /// Done with: dropped once nothing is in flight.
        dead: bool,
        shut_down: bool,
    }

    impl Conn {
        fn waiting(&self) -> usize {
            self.sending.len() - self.sent + self.pending.len()
        }
    }

    /// The ring and the connections.
    struct Floor {
        ring: IoUring,
        listener: TcpListener,
        conns: Vec<Option<Conn>>,
        free: Vec<usize>,
    }

    fn user_data(index: usize, op: u64) -> u64 {
        ((index as u64) << 1) | op
    }

    impl Floor {
        /// Queues a request, submitting what is queued when the queue is
        /// full.
        fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
            loop {
                // SAFETY: every buffer a request names lives in a
                // connection that is not dropped while its requests are in
                // flight (see `settle`), and is not moved or resized while
                // one is (a receive buffer grows only between receives, a
                // send buffer is swapped only between sends).
                if unsafe { self.ring.submission().push(entry) }.is_ok() {
                    return Ok(());
                }
                self.ring.submit()?;
            }
        }

        fn accept(&mut self) -> io::Result<()> {
            let fd = types::Fd(self.listener.as_raw_fd());
            let entry = opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .build()
                .user_data(ACCEPT);
            self.push(&entry)
        }

        fn arm_recv(&mut self, index: usize) -> io::Result<()> {
            let Some(Some(conn)) = self.conns.get_mut(index) else {
                return Ok(());
            };
            if conn.recv_in_flight || conn.dead || conn.closing || conn.waiting() > MAX_OUT {
                return Ok(());
            }
            if conn.filled == conn.buf.len() {
                if conn.buf.len() >= MAX_RECV_BUF {
                    conn.dead = true;
                    return Ok(());
                }
                conn.buf.resize((conn.buf.len() * 2).min(MAX_RECV_BUF), 0);
            }
            let room = &mut conn.buf[conn.filled..];
            let entry = opcode::Recv::new(
                types::Fd(conn.stream.as_raw_fd()),
                room.as_mut_ptr(),
                room.len() as u32,
            )
            .build()
            .user_data(user_data(index, RECV));
            conn.recv_in_flight = true;
            self.push(&entry)
        }

        fn arm_send(&mut self, index: usize) -> io::Result<()> {
            let Some(Some(conn)) = self.conns.get_mut(index) else {
                return Ok(());
            };
            if conn.send_in_flight || conn.dead {
                return Ok(());
            }
            if conn.sent == conn.sending.len() {
                if conn.pending.is_empty() {
                    return Ok(());
                }
                conn.sending.clear();
                conn.sent = 0;
                std::mem::swap(&mut conn.sending, &mut conn.pending);
            }
            let rest = &conn.sending[conn.sent..];
            let entry = opcode::Send::new(
                types::Fd(conn.stream.as_raw_fd()),
                rest.as_ptr(),
                rest.len() as u32,
            )
            .build()
            .user_data(user_data(index, SEND));
            conn.send_in_flight = true;
            self.push(&entry)
        }

        fn on_accept(&mut self, result: i32) -> io::Result<()> {
            self.accept()?;
            if result < 0 {
                // Out of descriptors, or a connection reset before it was
                // taken: the next accept tries again.
                return Ok(());
            }
            // SAFETY: a successful accept's result is a new descriptor that
            // nothing else owns.
            let stream = unsafe { TcpStream::from_raw_fd(result) };
            let _ = stream.set_nodelay(true);
            let conn = Conn {
                stream,
                upgraded: false,
                buf: vec![0; RECV_BUF],
                filled: 0,
                sending: Vec::new(),
                sent: 0,
                pending: Vec::new(),
                recv_in_flight: false,
                send_in_flight: false,
                closing: false,
                dead: false,
                shut_down: false,
            };
            let index = match self.free.pop() {
                Some(index) => {
                    self.conns[index] = Some(conn);
                    index
                }
                None => {
                    self.conns.push(Some(conn));
                    self.conns.len() - 1
                }
            };
            self.arm_recv(index)
        }

        fn on_recv(&mut self, index: usize, result: i32) -> io::Result<()> {
            let Some(Some(conn)) = self.conns.get_mut(index) else {
                return Ok(());
            };
            conn.recv_in_flight = false;
            if result <= 0 {
                // The end of the stream, or an error.
                conn.dead = true;
                return self.settle(index);
            }
            conn.filled += result as usize;
            if !conn.upgraded {
                match handshake(&conn.buf[..conn.filled]) {
                    Ok(Some((response, used))) => {
                        conn.pending.extend_from_slice(&response);
                        conn.upgraded = true;
                        conn.buf.copy_within(used..conn.filled, 0);
                        conn.filled -= used;
                    }
                    Ok(None) if conn.filled > MAX_HEAD => conn.dead = true,
                    Ok(None) => {}
                    Err(_) => conn.dead = true,
                }
            }
            if conn.upgraded && !conn.dead && conn.filled > 0 {
                match echo_frames(&mut conn.buf[..conn.filled]) {
                    Ok(echoed) => {
                        let (from, to) = echoed.out;
                        conn.pending.extend_from_slice(&conn.buf[from..to]);
                        conn.closing = echoed.close;
                        conn.buf.copy_within(echoed.consumed..conn.filled, 0);
                        conn.filled -= echoed.consumed;
                    }
                    Err(_) => conn.dead = true,
                }
            }
            self.arm_send(index)?;
            self.arm_recv(index)?;
            self.settle(index)
        }

        fn on_send(&mut self, index: usize, result: i32) -> io::Result<()> {
            let Some(Some(conn)) = self.conns.get_mut(index) else {
                return Ok(());
            };
            conn.send_in_flight = false;
            if result <= 0 {
                conn.dead = true;
                return self.settle(index);
            }
            conn.sent += result as usize;
            if conn.closing && conn.waiting() == 0 {
                conn.dead = true;
            }
            self.arm_send(index)?;
            self.arm_recv(index)?;
            self.settle(index)
        }

        /// Drops a dead connection once none of its requests is in flight;
        /// until then, shuts its socket down so that they complete.
        fn settle(&mut self, index: usize) -> io::Result<()> {
            let Some(Some(conn)) = self.conns.get_mut(index) else {
                return Ok(());
            };
            if !conn.dead {
                return Ok(());
            }
            if conn.recv_in_flight || conn.send_in_flight {
                if !conn.shut_down {
                    conn.shut_down = true;
                    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                }
                return Ok(());
            }
            self.conns[index] = None;
            self.free.push(index);
            Ok(())
        }

        fn run(&mut self) -> io::Result<()> {
            self.accept()?;
            let mut done: Vec<(u64, i32)> = Vec::with_capacity(RING_ENTRIES as usize * 2);
            loop {
                match self.ring.submit_and_wait(1) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
                done.clear();
                done.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
                for &(data, result) in &done {
                    if data == ACCEPT {
                        self.on_accept(result)?;
                    } else if data & 1 == RECV {
                        self.on_recv((data >> 1) as usize, result)?;
                    } else {
                        self.on_send((data >> 1) as usize, result)?;
                    }
                }
            }
        }
    }

    pub(crate) fn serve(port: u16) -> io::Result<()> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
        let ring = IoUring::builder()
            .setup_cqsize(RING_ENTRIES * 2)
            .build(RING_ENTRIES)?;
        println!("listening on {}", listener.local_addr()?);
        io::stdout().flush()?;
        Floor {
            ring,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
        }
        .run()
    }
}

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        Some(Ok(port)) => port,
        _ => {
            eprintln!("usage: floor_uring PORT   (0 for any free port)");
            return ExitCode::from(2);
        }
    };
    #[cfg(target_os = "linux")]
    let served = uring::serve(port);
    #[cfg(not(target_os = "linux"))]
    let served: std::io::Result<()> = Err(std::io::Error::other("io_uring is Linux's"));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor_uring: {e}");
            ExitCode::FAILURE
        }
    }
}
