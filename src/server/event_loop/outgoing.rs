//! The system calls of outgoing connections (see [`crate::server::outgoing`]):
//! `connect()` without blocking, notice when it is done, write what the
//! application queued, read until `WouldBlock` and hand each read to
//! [`Handler::on_out_data`].

use std::io::{self, Read, Write};
use std::mem;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::Server;
use crate::server::handler::{Context, Handler};
use crate::server::outgoing::{OUT_TOKEN_BASE, OutEnd, OutState};

/// Bytes one read of an outgoing connection may bring.
const OUT_READ_BYTES: usize = 16 * 1024;
/// Reads one outgoing connection gets per wake-up before the loop serves
/// others (it comes back to it in the same turn).
const OUT_MAX_READS: usize = 64;

impl<H: Handler> Server<H> {
    /// A readiness event for an outgoing connection.
    pub(super) fn out_event(&mut self, index: usize, readable: bool) {
        if let Some(conn) = self.core.outgoing.get_index_mut(index)
            && readable
        {
            conn.read_ready = true;
        }
        self.drive_out(index);
    }

    /// Drives the outgoing connections that asked for it (new ones, ones with
    /// output queued, ones still readable), a bounded number of passes.
    pub(super) fn drive_out_dirty(&mut self) {
        for _ in 0..4 {
            if self.core.outgoing.dirty.is_empty() {
                return;
            }
            let dirty = mem::take(&mut self.core.outgoing.dirty);
            for &index in &dirty {
                if let Some(conn) = self.core.outgoing.get_index_mut(index) {
                    conn.dirty = false;
                }
            }
            for index in dirty {
                self.drive_out(index);
            }
        }
    }

    /// Everything that can be done on outgoing connection `index` now.
    fn drive_out(&mut self, index: usize) {
        let Some(conn) = self.core.outgoing.get_index_mut(index) else {
            return;
        };
        // Closed before it was up: nothing to write, nothing to wait for.
        if conn.closing && conn.state != OutState::Open {
            return self.end_out(index, OutEnd::Closed);
        }
        match conn.state {
            OutState::Asked => {
                // POSIX connect(2) on a non-blocking socket: EINPROGRESS, and the
                // socket turns writable when the handshake is done or failed.
                match TcpStream::connect(conn.addr) {
                    Ok(socket) => {
                        conn.socket = Some(socket);
                        conn.state = OutState::Connecting;
                    }
                    Err(e) => return self.end_out(index, OutEnd::ConnectFailed(e.kind())),
                }
            }
            OutState::Connecting => {
                let Some(socket) = conn.socket.as_ref() else {
                    return self.end_out(index, OutEnd::ConnectFailed(io::ErrorKind::NotFound));
                };
                // SO_ERROR says how the handshake ended; a socket without a peer
                // yet is still connecting (a spurious wake-up).
                match socket.take_error() {
                    Ok(Some(e)) | Err(e) => {
                        return self.end_out(index, OutEnd::ConnectFailed(e.kind()));
                    }
                    Ok(None) => {}
                }
                match socket.peer_addr() {
                    Ok(_) => {
                        let _ = socket.set_nodelay(true);
                        conn.state = OutState::Open;
                        let id = conn.id;
                        let core = &mut self.core;
                        let mut ctx = context!(core);
                        self.handler.on_out_connected(&mut ctx, id);
                        self.apply_actions();
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                    Err(e) => return self.end_out(index, OutEnd::ConnectFailed(e.kind())),
                }
            }
            OutState::Open => {}
        }
        if self.is_out_open(index) {
            if let Err(end) = self.flush_out(index) {
                return self.end_out(index, end);
            }
            if let Err(end) = self.read_out(index) {
                return self.end_out(index, end);
            }
            if let Err(end) = self.flush_out(index) {
                return self.end_out(index, end);
            }
            if let Some(conn) = self.core.outgoing.get_index_mut(index)
                && conn.closing
                && conn.queued() == 0
            {
                return self.end_out(index, OutEnd::Closed);
            }
        }
        self.set_out_interest(index);
    }

    /// Whether slot `index` holds a connected connection.
    fn is_out_open(&mut self, index: usize) -> bool {
        self.core
            .outgoing
            .get_index_mut(index)
            .is_some_and(|c| c.state == OutState::Open)
    }

    /// Writes what is queued until done or `WouldBlock`.
    fn flush_out(&mut self, index: usize) -> Result<(), OutEnd> {
        let Some(conn) = self.core.outgoing.get_index_mut(index) else {
            return Ok(());
        };
        let Some(socket) = conn.socket.as_mut() else {
            return Ok(());
        };
        while conn.written < conn.output.len() {
            conn.io.write_calls += 1;
            let rest = conn.output.get(conn.written..).unwrap_or_default();
            match socket.write(rest) {
                Ok(0) => return Err(OutEnd::Error(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    conn.written += n;
                    conn.io.bytes_out += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(OutEnd::Error(e.kind())),
            }
        }
        if conn.written == conn.output.len() {
            conn.output.clear();
            conn.written = 0;
        }
        Ok(())
    }

    /// Reads until `WouldBlock` (or [`OUT_MAX_READS`] reads: then it is driven
    /// again before the loop blocks), handing each read to the application.
    fn read_out(&mut self, index: usize) -> Result<(), OutEnd> {
        let mut buf = mem::take(&mut self.core.outgoing.read_buf);
        buf.resize(OUT_READ_BYTES, 0);
        let result = self.read_out_into(index, &mut buf);
        self.core.outgoing.read_buf = buf;
        result
    }

    fn read_out_into(&mut self, index: usize, buf: &mut [u8]) -> Result<(), OutEnd> {
        for _ in 0..OUT_MAX_READS {
            let Some(conn) = self.core.outgoing.get_index_mut(index) else {
                return Ok(());
            };
            if !conn.read_ready || conn.paused {
                return Ok(());
            }
            let Some(socket) = conn.socket.as_mut() else {
                return Ok(());
            };
            conn.io.read_calls += 1;
            let n = match socket.read(buf) {
                Ok(0) => return Err(OutEnd::PeerClosed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.read_ready = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(OutEnd::Error(e.kind())),
            };
            conn.io.bytes_in += n as u64;
            let id = conn.id;
            let core = &mut self.core;
            let mut ctx = context!(core);
            self.handler
                .on_out_data(&mut ctx, id, buf.get(..n).unwrap_or_default());
            self.apply_actions();
        }
        // Still readable: the others first, then this one again.
        self.core.outgoing.mark_dirty(index);
        Ok(())
    }

    /// Registers the socket for what it waits for: writability while connecting
    /// or while output is queued, readability always.
    fn set_out_interest(&mut self, index: usize) {
        let core = &mut self.core;
        let Some(conn) = core.outgoing.get_index_mut(index) else {
            return;
        };
        let wanted = if conn.state == OutState::Connecting || conn.queued() > 0 {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if conn.interest == Some(wanted) {
            return;
        }
        let Some(socket) = conn.socket.as_mut() else {
            return;
        };
        let token = Token(OUT_TOKEN_BASE + index);
        let result = match conn.interest {
            None => core.registry.register(socket, token, wanted),
            Some(_) => core.registry.reregister(socket, token, wanted),
        };
        match result {
            Ok(()) => conn.interest = Some(wanted),
            Err(e) => {
                let end = if conn.state == OutState::Open {
                    OutEnd::Error(e.kind())
                } else {
                    OutEnd::ConnectFailed(e.kind())
                };
                self.end_out(index, end);
            }
        }
    }

    /// Takes outgoing connection `index` out of the loop and tells the
    /// application why.
    pub(super) fn end_out(&mut self, index: usize, end: OutEnd) {
        let core = &mut self.core;
        let Some(mut conn) = core.outgoing.remove(index) else {
            return;
        };
        if let Some(socket) = conn.socket.as_mut()
            && conn.interest.is_some()
        {
            let _ = core.registry.deregister(socket);
        }
        let id = conn.id;
        drop(conn);
        let mut ctx: Context<'_> = context!(core);
        self.handler.on_out_closed(&mut ctx, id, end);
        self.apply_actions();
    }
}
