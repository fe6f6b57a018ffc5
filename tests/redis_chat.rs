//! One chat room across two and three chat servers through a real Redis
//! (`ChatPush::with_relay`): a message said on any server reaches every user on
//! every server exactly once, everyone in the same order, joins and leaves too; and when Redis is
//! killed mid-chat, the servers keep their users, tell them, serve them alone,
//! and rejoin once Redis is back.
//!
//! These need `redis-server` (`apt-get install -y redis-server`): they are
//! ignored by `cargo test` and run with `cargo test -- --ignored`.

mod redis_support;
mod ws_support;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redis_support::RedisServer;
use tungstenite::WebSocket;
use wirepatterns::patterns::chat::ChatPush;
use wirepatterns::patterns::push::HubConfig;
use wirepatterns::patterns::relay::RelayConfig;
use wirepatterns::patterns::websocket::WsServer;
use wirepatterns::server::{Config, Running, Server};
use ws_support::{no_pings, read_text, tungstenite_client};

/// What a server's relay told its log.
type Status = Arc<Mutex<Vec<String>>>;

/// A chat server on a free port, sharing room `lobby` on `redis` as `name`.
struct Chat {
    running: Running<WsServer<ChatPush>>,
    name: String,
    status: Status,
}

impl Chat {
    /// A server whose publishing link checks Redis every `health_every` (a
    /// frozen Redis is noticed within two of these; the default, 5 s, for
    /// tests that do not freeze it, so that a loaded machine's pause is not
    /// taken for a freeze).
    fn start_checking(redis: SocketAddr, name: &str, health_every: Duration) -> Chat {
        let status = Status::default();
        let log = Arc::clone(&status);
        let mut relay = RelayConfig::new(redis, name);
        relay.room = "lobby".into();
        relay.health_every = Some(health_every);
        let chat = ChatPush::with_relay(HubConfig::default(), relay, move |line| {
            log.lock().expect("status").push(line.to_string());
        });
        let config = Config {
            addr: "127.0.0.1:0".parse().expect("addr"),
            ..Config::default()
        };
        let running = Server::bind(config, WsServer::new(no_pings(), chat))
            .and_then(Server::spawn)
            .expect("chat server starts");
        Chat {
            running,
            name: name.to_string(),
            status,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// Lines the relay has said containing `needle`.
    fn said(&self, needle: &str) -> usize {
        let lines = self.status.lock().expect("status");
        lines.iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits until the relay has said `count` lines containing `needle`.
    fn wait_status(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let lines = self.status.lock().expect("status").clone();
            if lines.iter().filter(|l| l.contains(needle)).count() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server {} never said {needle:?} ({count}x): {lines:?}",
                self.name
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A user: its socket, and the name the room knows it by.
struct User {
    ws: WebSocket<TcpStream>,
    name: String,
}

impl User {
    fn join(chat: &Chat) -> User {
        let (ws, port) = tungstenite_client(chat.addr());
        User {
            ws,
            name: format!("User{port}@{}", chat.name),
        }
    }

    fn say(&mut self, text: &str) {
        self.ws
            .send(tungstenite::Message::text(text))
            .expect("send");
    }

    /// Reads texts until one equals `line`; returns those before it.
    fn read_until(&mut self, line: &str) -> Vec<String> {
        let mut before = Vec::new();
        for _ in 0..10_000 {
            let text = read_text(&mut self.ws);
            if text == line {
                return before;
            }
            before.push(text);
        }
        panic!("{} never got {line:?}; got {before:?}", self.name);
    }
}

/// Starts `n` servers on one Redis, waits until each has joined the room, and
/// connects `per_server` users to each. Every user has read every join notice
/// that came after its own (checked: each exactly once, in join order).
fn room(redis: &RedisServer, n: usize, per_server: usize) -> (Vec<Chat>, Vec<User>) {
    room_checking(redis, n, per_server, Duration::from_secs(5))
}

/// [`room`] with the servers' health check every `health_every`.
fn room_checking(
    redis: &RedisServer,
    n: usize,
    per_server: usize,
    health_every: Duration,
) -> (Vec<Chat>, Vec<User>) {
    let chats: Vec<Chat> = (0..n)
        .map(|i| Chat::start_checking(redis.addr(), &format!("s{i}"), health_every))
        .collect();
    for chat in &chats {
        chat.wait_status("is shared through Redis", 1);
    }
    let mut users: Vec<User> = Vec::new();
    for round in 0..per_server {
        for chat in &chats {
            let user = User::join(chat);
            let notice = format!("{} just connected.", user.name);
            users.push(user);
            for u in &mut users {
                let before = u.read_until(&notice);
                assert!(
                    before.is_empty(),
                    "round {round}: {} got {before:?}",
                    u.name
                );
            }
        }
    }
    (chats, users)
}

#[test]
#[ignore = "needs redis-server"]
fn two_and_three_servers_share_one_room_every_message_once_in_one_order() {
    let redis = RedisServer::require();
    for n in [2, 3] {
        let (chats, mut users) = room(&redis, n, 2);
        // Every user says 20 things, taking turns, without waiting for
        // deliveries: messages from different servers interleave in Redis.
        let rounds = 20;
        for r in 0..rounds {
            for u in &mut users {
                let text = format!("m{r} from {}", u.name);
                u.say(&text);
            }
        }
        let total = rounds * users.len();
        let mut orders: Vec<Vec<String>> = Vec::new();
        for u in &mut users {
            let mut got = Vec::new();
            while got.len() < total {
                got.push(read_text(&mut u.ws));
            }
            orders.push(got);
        }
        let first = &orders[0];
        let distinct: HashSet<&String> = first.iter().collect();
        assert_eq!(distinct.len(), total, "{n} servers: each message once");
        for (u, order) in users.iter().zip(&orders) {
            assert_eq!(order, first, "{n} servers: {} saw another order", u.name);
        }
        for u in &users {
            let own: Vec<&String> = first
                .iter()
                .filter(|l| l.starts_with(&format!("{} says: ", u.name)))
                .collect();
            let expected: Vec<String> = (0..rounds)
                .map(|r| format!("{} says: m{r} from {}", u.name, u.name))
                .collect();
            assert_eq!(own, expected.iter().collect::<Vec<_>>(), "sender order");
        }
        // Nothing more: no local echo on top of Redis's delivery.
        let probe = format!("probe from {}", users[0].name);
        users[0].say(&probe);
        let probe_line = format!("{} says: probe from {}", users[0].name, users[0].name);
        for u in &mut users {
            let before = u.read_until(&probe_line);
            assert!(before.is_empty(), "{} got extra {before:?}", u.name);
        }
        // A leave is a line of the room too: everyone on every server hears it.
        let gone = users.pop().expect("a user");
        let left = format!("{} left.", gone.name);
        drop(gone);
        for u in &mut users {
            let before = u.read_until(&left);
            assert!(before.is_empty(), "{} got {before:?}", u.name);
        }
        drop(users);
        for chat in chats {
            chat.running.stop().expect("stop");
        }
    }
}

#[test]
#[ignore = "needs redis-server"]
fn redis_killed_and_restarted_mid_chat_servers_survive_tell_users_and_rejoin() {
    let mut redis = RedisServer::require();
    let (chats, mut users) = room(&redis, 2, 1);
    let (a, b) = (0, 1);
    users[a].say("before");
    let before = format!("{} says: before", users[a].name);
    for u in &mut users {
        assert!(u.read_until(&before).is_empty());
    }

    redis.stop().expect("redis stops");
    for chat in &chats {
        chat.wait_status("only users on this server hear you", 1);
    }
    // Each user is told, by its own server.
    for (u, chat) in users.iter_mut().zip(&chats) {
        let text = read_text(&mut u.ws);
        assert!(
            text.starts_with(&format!("Server@{}: Redis at ", chat.name))
                && text.ends_with("only users on this server hear you"),
            "{}: {text:?}",
            u.name
        );
    }
    // Alone, each server still serves its own users, at once.
    users[a].say("during");
    let during = format!("{} says: during", users[a].name);
    assert!(users[a].read_until(&during).is_empty());
    users[b].say("also during");
    let also = format!("{} says: also during", users[b].name);
    // b hears its own message and nothing of a's.
    assert!(users[b].read_until(&also).is_empty());

    redis.restart().expect("redis restarts");
    for chat in &chats {
        chat.wait_status("is shared through Redis", 2);
    }
    for (u, chat) in users.iter_mut().zip(&chats) {
        let text = read_text(&mut u.ws);
        assert_eq!(
            text,
            format!(
                "Server@{}: room lobby is shared through Redis: everyone in it hears you",
                chat.name
            ),
            "{}",
            u.name
        );
    }
    users[b].say("after");
    let after = format!("{} says: after", users[b].name);
    for u in &mut users {
        assert!(u.read_until(&after).is_empty(), "{}", u.name);
    }
    drop(users);
    for chat in chats {
        chat.running.stop().expect("stop");
    }
}

#[test]
#[ignore = "needs redis-server"]
fn a_frozen_redis_is_noticed_users_are_told_and_the_room_comes_back_when_it_thaws() {
    let redis = RedisServer::require();
    let (chats, mut users) = room_checking(&redis, 2, 1, Duration::from_millis(500));
    let pid = redis.pid().expect("redis runs");
    let signal = |sig: &str| {
        let status = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {sig} {pid}");
    };
    // SIGSTOP: Redis keeps every connection open and answers nothing.
    signal("-STOP");
    for chat in &chats {
        chat.wait_status("stopped answering", 1);
    }
    for (u, chat) in users.iter_mut().zip(&chats) {
        let text = read_text(&mut u.ws);
        assert!(
            text.starts_with(&format!("Server@{}: Redis at ", chat.name))
                && text.contains("stopped answering")
                && text.ends_with("only users on this server hear you"),
            "{}: {text:?}",
            u.name
        );
    }
    // Its kernel still accepts connections: a reconnect must not count as
    // Redis being back until Redis answers. Five health periods, no flapping.
    thread::sleep(Duration::from_millis(2500));
    for chat in &chats {
        assert_eq!(chat.said("is shared through Redis"), 1, "{}", chat.name);
        assert_eq!(chat.said("stopped answering"), 1, "{}", chat.name);
    }
    users[0].say("while frozen");
    let local = format!("{} says: while frozen", users[0].name);
    assert!(users[0].read_until(&local).is_empty());
    signal("-CONT");
    for chat in &chats {
        chat.wait_status("is shared through Redis", 2);
    }
    for u in &mut users {
        let text = read_text(&mut u.ws);
        assert!(
            text.ends_with("room lobby is shared through Redis: everyone in it hears you"),
            "{text:?}"
        );
    }
    users[1].say("thawed");
    let thawed = format!("{} says: thawed", users[1].name);
    for u in &mut users {
        assert!(u.read_until(&thawed).is_empty(), "{}", u.name);
    }
    drop(users);
    for chat in chats {
        chat.running.stop().expect("stop");
    }
}

#[test]
#[ignore = "needs redis-server"]
fn a_newcomer_hears_its_own_join_first_then_the_room_as_everyone_does() {
    let redis = RedisServer::require();
    let (chats, mut users) = room(&redis, 2, 1);
    // A user on s0 talks without pause while someone joins on s1.
    let talker = users[0].name.clone();
    for i in 0..2000 {
        users[0].say(&format!("busy {i}"));
    }
    let mut newcomer = User::join(&chats[1]);
    let notice = format!("{} just connected.", newcomer.name);
    // As alone: its first line is its own join notice, whatever was said
    // around it.
    assert_eq!(read_text(&mut newcomer.ws), notice);
    // From there on it hears what a user who was there all along hears after
    // that notice: the same lines, in the same order.
    let last = format!("{talker} says: busy 1999");
    let before_notice = users[1].read_until(&notice);
    assert!(before_notice.len() <= 2000, "{}", before_notice.len());
    let mut after_notice = users[1].read_until(&last);
    after_notice.push(last.clone());
    let mut heard = newcomer.read_until(&last);
    heard.push(last);
    assert_eq!(heard, after_notice);
    drop(newcomer);
    drop(users);
    for chat in chats {
        chat.running.stop().expect("stop");
    }
}
