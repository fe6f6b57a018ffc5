//! The hot path allocates nothing: once a connection's buffers have grown to size,
//! serving a request (read, parse, handler, encode, write) makes no heap
//! allocation. Checked by counting every allocation in this test process while a
//! client that itself allocates nothing sends requests on a warmed-up connection.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wirepatterns::patterns::request_response::RequestResponse;
use wirepatterns::server::{Config, Server};

/// Counts allocations and reallocations, then defers to the system allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same layout, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn serving_requests_on_a_warm_connection_allocates_nothing() {
    let config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = Server::bind(config, RequestResponse::new())
        .and_then(Server::spawn)
        .expect("server starts");
    let mut client = TcpStream::connect(server.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.set_nodelay(true).unwrap();

    // One request, and ten of it pipelined in one write.
    let one = b"GET /hot/path?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    let ten = one.repeat(10);

    // Learn the response's length (it never changes: same request, and the Date
    // field has a fixed width), and warm the buffers up.
    let mut head = Vec::new();
    client.write_all(one).unwrap();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        client.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let text = String::from_utf8(head.clone()).unwrap();
    let body_len: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    let mut body = vec![0u8; body_len];
    client.read_exact(&mut body).unwrap();
    let response_len = head.len() + body_len;
    let mut responses = vec![0u8; response_len * 10];

    let mut round = |allocations_before: Option<u64>| {
        for _ in 0..200 {
            client.write_all(one).unwrap();
            client.read_exact(&mut responses[..response_len]).unwrap();
            client.write_all(&ten).unwrap();
            client.read_exact(&mut responses).unwrap();
        }
        allocations_before.map(|before| ALLOCATIONS.load(Ordering::Relaxed) - before)
    };
    round(None);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let allocations = round(Some(before)).unwrap_or(u64::MAX);
    assert!(
        responses.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{:?}",
        String::from_utf8_lossy(&responses[..64])
    );
    // 2 200 requests served. A handful of allocations could come from elsewhere
    // in the process (the test harness); one per request could not.
    assert!(
        allocations < 20,
        "{allocations} allocations for 2200 requests"
    );
    drop(client);
    server.stop().unwrap();
}
