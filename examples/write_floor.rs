//! write_floor: the kernel's floor under "answer N held requests at once".
//!
//! However a server is written, answering N held long polls takes at least N
//! `write()` calls, one per socket: the kernel has no call that writes to many
//! sockets. This program measures what those calls alone cost on this machine,
//! with no HTTP, no event loop and no allocation in between: it opens N loopback
//! TCP connections to itself, then, from one thread, writes `--bytes` bytes (188 by
//! default: the size of a `JobStatus` answer) to each accepted socket and times the
//! loop. A second thread drains the client ends with mio, as a load client would.
//! On loopback the sender's `write()` also runs the receiver's TCP processing, so
//! this is the floor for a server and its clients on one machine.
//!
//! ```sh
//! ulimit -n 20000
//! cargo run --release --example write_floor -- --conns 10000
//! ```
//!
//! Compare the result with the jobs server's `wake.last_us` for the same N
//! (`scripts/polling.sh long`): the server's wake-up cannot beat this.
//! `SPLIT_CORES=1 scripts/polling.sh long` runs it pinned to CPU 0 with loopback's
//! receive processing steered to CPU 1 (RPS), as if the clients were on another
//! host; its draining thread then shares CPU 0, so the writer's CPU time, not the
//! wall time, is the floor.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use wirepatterns::patterns::polling::thread_cpu_time as thread_cpu;

fn main() -> ExitCode {
    let mut conns = 10_000usize;
    let mut bytes = 188usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<usize>().ok());
        match (arg.as_str(), value) {
            ("--conns", Some(n)) if n > 0 => conns = n,
            ("--bytes", Some(n)) if n > 0 => bytes = n,
            _ => {
                eprintln!(
                    "usage: write_floor [--conns N (default 10000)] [--bytes B (default 188)]"
                );
                return ExitCode::from(2);
            }
        }
    }
    match run(conns, bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e} (for many connections, raise the limit first: ulimit -n 20000)");
            ExitCode::FAILURE
        }
    }
}

fn run(conns: usize, bytes: usize) -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut clients = Vec::with_capacity(conns);
    let mut servers = Vec::with_capacity(conns);
    for _ in 0..conns {
        let client = TcpStream::connect(addr)?;
        let (server, _) = listener.accept()?;
        client.set_nonblocking(true)?;
        server.set_nodelay(true)?;
        clients.push(client);
        servers.push(server);
    }
    let expected = conns * bytes;
    let reader = thread::spawn(move || drain(clients, expected));
    // Let the reader register every socket before the clock starts.
    thread::sleep(Duration::from_millis(500));

    let answer = vec![b'x'; bytes];
    let cpu_before = thread_cpu();
    let start = Instant::now();
    for server in &mut servers {
        server.write_all(&answer)?;
    }
    let took = start.elapsed();
    let cpu = thread_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let read = reader
        .join()
        .map_err(|_| io::Error::other("the reader panicked"))??;

    println!("write_floor: one {bytes} B write() to each of {conns} loopback sockets, one thread");
    println!(
        "  all written in      {:>10.1} ms",
        took.as_secs_f64() * 1e3
    );
    println!(
        "  per write           {:>10.2} µs",
        took.as_secs_f64() * 1e6 / conns as f64
    );
    if let Some(cpu) = cpu {
        println!("  writer's CPU time   {:>10.1} ms", cpu.as_secs_f64() * 1e3);
    }
    println!("  client ends read    {read:>10} B of {expected} B");
    Ok(())
}

/// Reads the client ends until `expected` bytes came (or 10 s pass).
fn drain(clients: Vec<TcpStream>, expected: usize) -> io::Result<usize> {
    let mut poll = Poll::new()?;
    let mut streams: Vec<MioStream> = clients.into_iter().map(MioStream::from_std).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        poll.registry()
            .register(stream, Token(i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let mut got = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while got < expected && Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for event in &events {
            let Some(stream) = streams.get_mut(event.token().0) else {
                continue;
            };
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
        }
    }
    Ok(got)
}
