//! The keepalive schedule of one WebSocket, as a value with no clock and no
//! socket inside (sans-I/O): the glue feeds it the time, it says when to wake up
//! next and what to do then. So the schedule is tested with a fake clock, here,
//! and the glue only carries out its answers.
//!
//! # The schedule
//!
//! With `interval` = [`super::WsConfig::ping_interval`] and `timeout` =
//! [`super::WsConfig::ping_timeout`], for a WebSocket opened at `t0`:
//!
//! - **Pings.** The first ping is due at `t0 + interval`; each next one is due
//!   `interval` after the previous one went out, whether or not the peer answered
//!   it and whatever else it sent. (RFC 6455 §5.5.2 lets either endpoint ping at
//!   any time; §5.5.3 has the peer answer with a pong "as soon as is practical".)
//! - **Deadline.** A ping sent at `s` when none is outstanding sets the deadline
//!   `s + timeout`. Anything at all from the peer (a pong, any frame, any byte)
//!   clears it: a live peer is proven alive by whatever it sends, not only by a
//!   pong. A ping sent while an earlier one is still unanswered (when `interval`
//!   is shorter than `timeout`) leaves the earlier deadline as it is: the peer
//!   owes an answer to the oldest ping first.
//! - **Timeout.** At the deadline, if it was not cleared, the peer is taken for
//!   dead: [`KeepaliveStep::TimedOut`], exactly at `s + timeout` when the timer is
//!   on time.
//!
//! So a peer that answers every ping gets a ping every `interval`; a peer that
//! goes silent is closed `timeout` after the first ping it did not answer, that
//! is at most `interval + timeout` after it was last heard. When a wake-up is
//! late (the loop was busy), whatever came due is done then: a deadline that
//! passed wins over a ping that is due.

use std::time::{Duration, Instant};

/// What to do when the keepalive's wake-up time comes ([`Keepalive::on_timer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepaliveStep {
    /// Nothing is due yet: wake up again at [`Keepalive::next_wake`].
    Wait,
    /// Send a ping now; then wake up at [`Keepalive::next_wake`].
    Ping,
    /// The peer sent nothing within the timeout after a ping: close the
    /// connection. The keepalive stays timed out.
    TimedOut,
}

/// One WebSocket's keepalive: when the next ping is due and, while a ping is
/// unanswered, when the peer is taken for dead. See the module docs for the
/// schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Time between pings.
    interval: Duration,
    /// How long the peer has to send something after a ping.
    timeout: Duration,
    /// When the next ping goes out.
    next_ping: Instant,
    /// While a ping is unanswered: when the oldest one's time is up.
    deadline: Option<Instant>,
}

impl Keepalive {
    /// The keepalive of a WebSocket opened at `now`: the first ping is due at
    /// `now + interval`.
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Keepalive {
        Keepalive {
            interval,
            timeout,
            next_ping: now + interval,
            deadline: None,
        }
    }

    /// When the next ping is due.
    pub fn next_ping(&self) -> Instant {
        self.next_ping
    }

    /// When the peer is taken for dead unless it sends something first; `None`
    /// while no ping is unanswered.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// When [`Keepalive::on_timer`] must next be called: the next ping or the
    /// deadline, whichever comes first.
    pub fn next_wake(&self) -> Instant {
        match self.deadline {
            Some(deadline) => deadline.min(self.next_ping),
            None => self.next_ping,
        }
    }

    /// Bytes came from the peer at `now`: every ping sent so far is answered.
    pub fn on_peer_activity(&mut self, now: Instant) {
        let _ = now;
        self.deadline = None;
    }

    /// The wake-up time came (or passed): what to do at `now`.
    pub fn on_timer(&mut self, now: Instant) -> KeepaliveStep {
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return KeepaliveStep::TimedOut;
        }
        if now < self.next_ping {
            return KeepaliveStep::Wait;
        }
        self.deadline = Some(self.deadline.unwrap_or(now + self.timeout));
        self.next_ping = now + self.interval;
        KeepaliveStep::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs the keepalive from `t0` to `t0 + until`, waking exactly when it asks,
    /// with the peer sending something at each offset of `peer` (in order); returns
    /// what happened, as offsets from `t0`.
    fn run(interval: u64, timeout: u64, peer: &[u64], until: u64) -> (Vec<u64>, Option<u64>) {
        let t0 = Instant::now();
        let mut k = Keepalive::new(ms(interval), ms(timeout), t0);
        let mut pings = Vec::new();
        let mut peer = peer.iter().copied().peekable();
        for _ in 0..10_000 {
            let wake = k.next_wake();
            // The peer's bytes that come before the wake-up are seen first.
            while let Some(at) = peer.next_if(|&at| t0 + ms(at) < wake) {
                k.on_peer_activity(t0 + ms(at));
            }
            if wake > t0 + ms(until) {
                break;
            }
            let at = wake.duration_since(t0).as_millis() as u64;
            match k.on_timer(wake) {
                KeepaliveStep::Wait => {}
                KeepaliveStep::Ping => pings.push(at),
                KeepaliveStep::TimedOut => return (pings, Some(at)),
            }
        }
        (pings, None)
    }

    #[test]
    fn first_ping_one_interval_after_open_then_every_interval_while_answered() {
        // The peer answers each ping 5 ms after it.
        let answers: Vec<u64> = (1..=10).map(|k| k * 100 + 5).collect();
        let (pings, dead) = run(100, 50, &answers, 1000);
        assert_eq!(pings, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
        assert_eq!(dead, None);
    }

    #[test]
    fn a_silent_peer_is_closed_exactly_at_the_first_unanswered_ping_plus_timeout() {
        let (pings, dead) = run(100, 50, &[], 1000);
        assert_eq!(pings, [100]);
        assert_eq!(dead, Some(150));
        // It answered the first two pings, then fell silent.
        let (pings, dead) = run(100, 50, &[110, 210], 1000);
        assert_eq!(pings, [100, 200, 300]);
        assert_eq!(dead, Some(350));
    }

    #[test]
    fn any_frame_from_the_peer_counts_as_an_answer_not_only_a_pong() {
        // Messages (no pongs) at 20, 120, 230 and 340: each of the first three
        // pings is followed by one within 50 ms; the one at 400 is not.
        let (pings, dead) = run(100, 50, &[20, 120, 230, 340], 1000);
        assert_eq!(pings, [100, 200, 300, 400]);
        assert_eq!(dead, Some(450));
        // Bytes just before the deadline save it; the next ping is on time.
        let (pings, dead) = run(100, 50, &[149], 220);
        assert_eq!(pings, [100, 200]);
        assert_eq!(dead, None);
    }

    #[test]
    fn interval_shorter_than_timeout_keeps_pinging_and_times_out_on_the_oldest_ping() {
        // Pings every 100 ms, 250 ms to answer: silent from the start, pings go
        // out at 100, 200, 300; the first one's time is up at 350.
        let (pings, dead) = run(100, 250, &[], 1000);
        assert_eq!(pings, [100, 200, 300]);
        assert_eq!(dead, Some(350));
        // An answer at 320 settles all three; the next silence starts at 400.
        let (pings, dead) = run(100, 250, &[320], 1000);
        assert_eq!(pings, [100, 200, 300, 400, 500, 600]);
        assert_eq!(dead, Some(650));
    }

    #[test]
    fn interval_longer_than_timeout_waits_the_interval_after_an_answer() {
        let (pings, dead) = run(1000, 200, &[1100], 2500);
        assert_eq!(pings, [1000, 2000]);
        assert_eq!(dead, Some(2200));
    }

    #[test]
    fn a_late_wake_up_does_what_came_due_and_the_deadline_wins() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(ms(100), ms(50), t0);
        assert_eq!(k.on_timer(t0 + ms(99)), KeepaliveStep::Wait);
        // 30 ms late: the ping goes out now, the schedule counts from now.
        assert_eq!(k.on_timer(t0 + ms(130)), KeepaliveStep::Ping);
        assert_eq!(k.deadline(), Some(t0 + ms(180)));
        assert_eq!(k.next_ping(), t0 + ms(230));
        assert_eq!(k.next_wake(), t0 + ms(180));
        // Woken only after both the deadline and the next ping passed.
        assert_eq!(k.on_timer(t0 + ms(400)), KeepaliveStep::TimedOut);
        assert_eq!(k.on_timer(t0 + ms(401)), KeepaliveStep::TimedOut);
    }
}
