//! The driver core's synchronization, checked with loom: every interleaving (up to a preemption
//! bound) of a few caller threads, a background thread that carries out the work, a logout, a
//! dropped caller and a stop, over the real `Core` (its lock is loom's under `--cfg loom`).
//!
//! Run: `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p auth-driver --test loom --release`
//!
//! What every model checks:
//! - **no lost wake-up**: callers, the logout and the background wait with
//!   `loom::future::block_on`, whose waker is a loom notification; a wait nobody ends is a
//!   deadlock, which loom reports as a failure;
//! - **exactly one final outcome per caller**: a caller's loop ends at its first `Done` or
//!   `Stopped`, and after it the core no longer knows the request (nothing left to take, nothing
//!   left in the table);
//! - **P7 at the system level**: a caller that receives `Send { token: "at-N" }` finds that the
//!   background already finished the persist of generation N (a loom atomic written before
//!   `Core::persisted` is called);
//! - **work in the session's order**: the background records the work it carries out, and the
//!   record must be one the session can emit (a persist right after the operation that brought
//!   its tokens, nothing but a clear after a logout).
//!
//! Bounds: `preemption_bound` [`PREEMPTIONS`] = 2 unless `LOOM_MAX_PREEMPTIONS` says otherwise
//! (loom's own default is unbounded; at 3 the two larger models take more than 15 minutes). The
//! clock never moves, so every wait ends by a wake-up. The suite takes about a minute in release
//! mode on 2 busy cores (docs/verification.md, "Concurrency (loom)", has the times).
#![cfg(loom)]
// Test code: a broken expectation panics, which is how a loom model reports it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::poll_fn;
use std::task::Poll;

use auth_core::{
    AccessToken, Config, Instant, Outcome, RefreshToken, RequestError, RequestSpec, Session,
    Snapshot, TokenSet, UnixTime, Verdict,
};
use auth_driver::{Core, Step, Work};
use loom::future::block_on;
use loom::sync::atomic::{AtomicU64, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

/// How many preemptions loom explores per execution.
const PREEMPTIONS: usize = 2;

/// The clock never moves in these models: no deadline fires, every wait ends by a wake-up.
const NOW: Instant = Instant::from_millis(0);

/// Two callers submit while the session logs in; the background logs in and persists.
#[test]
fn login_storm_every_caller_woken_once_and_sent_only_persisted_tokens() {
    check(|| {
        let world = World::fresh();
        let callers: Vec<_> = (0..2)
            .map(|caller| {
                let world = Arc::clone(&world);
                // One caller polls once with a waker it then abandons (a wait of its own
                // that timed out) before it waits for real: the later waker must be woken.
                thread::spawn(move || world.call_with(Verdict::Accepted, caller == 1))
            })
            .collect();
        let background = World::spawn_background(&world);
        for caller in callers {
            assert_eq!(caller.join().unwrap(), Final::Done(Outcome::Deliver));
        }
        world.core.stop();
        let log = background.join().unwrap();
        assert_eq!(log, [Did::Login, Did::Persist(1)]);
        assert_eq!((world.core.outstanding(), world.core.callers()), (0, 0));
    });
}

/// A 401 starts a refresh (its result fed from the background) while the user logs out; the
/// logout hears its clear.
#[test]
fn refresh_racing_a_logout_keeps_the_order_and_every_promise() {
    check(|| {
        let world = World::restored();
        let caller = {
            let world = Arc::clone(&world);
            thread::spawn(move || world.call(Verdict::Rejected))
        };
        let logout = {
            let world = Arc::clone(&world);
            thread::spawn(move || {
                let ticket = world.core.logout(NOW);
                block_on(poll_fn(|cx| world.core.poll_logout(ticket, cx.waker())))
            })
        };
        let background = World::spawn_background(&world);
        let outcome = caller.join().unwrap();
        assert!(matches!(logout.join().unwrap(), Ok(())));
        world.core.stop();
        let log = background.join().unwrap();

        match log.as_slice() {
            // The logout came first: the 401 fails with LoggedOut, nothing refreshes.
            [Did::Clear] => {
                assert_eq!(outcome, Final::Done(Outcome::Fail(RequestError::LoggedOut)))
            }
            // The refresh's result came after the logout: dropped, never persisted.
            [Did::Refresh, Did::Clear] => {
                assert_eq!(outcome, Final::Done(Outcome::Fail(RequestError::LoggedOut)))
            }
            // The refresh finished first: its persist before the clear, the resend delivered.
            [Did::Refresh, Did::Persist(2), Did::Clear] => {
                assert_eq!(outcome, Final::Done(Outcome::Deliver))
            }
            other => panic!("work not in an order the session emits: {other:?}"),
        }
        assert_eq!((world.core.outstanding(), world.core.callers()), (0, 0));
    });
}

/// A caller gives up (cancels without ever polling) while another waits for the login.
#[test]
fn dropped_caller_is_never_sent_and_leaves_no_entry() {
    check(|| {
        let world = World::fresh();
        let waiting = {
            let world = Arc::clone(&world);
            thread::spawn(move || world.call(Verdict::Accepted))
        };
        let dropped = {
            let world = Arc::clone(&world);
            thread::spawn(move || {
                // Dropped before it sent anything, whether its send was ready or not.
                let (id, _) = world.core.submit(RequestSpec::bearer(), NOW);
                let id = id.unwrap();
                world.core.cancel(id, NOW);
                // Gone: no step waits for it, now or after the login.
                assert_eq!(world.poll_once(id), Poll::Ready(Step::Stopped));
                id
            })
        };
        let background = World::spawn_background(&world);
        assert_eq!(waiting.join().unwrap(), Final::Done(Outcome::Deliver));
        let dropped = dropped.join().unwrap();
        assert_eq!(world.poll_once(dropped), Poll::Ready(Step::Stopped));
        assert_eq!((world.core.outstanding(), world.core.callers()), (0, 0));
        world.core.stop();
        assert_eq!(background.join().unwrap(), [Did::Login, Did::Persist(1)]);
    });
}

/// The driver stops while two callers wait for the login and the background works.
#[test]
fn stop_racing_waiting_callers_ends_each_exactly_once() {
    check(|| {
        let world = World::fresh();
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let world = Arc::clone(&world);
                thread::spawn(move || world.call(Verdict::Accepted))
            })
            .collect();
        let background = World::spawn_background(&world);
        world.core.stop();
        let outcomes: Vec<_> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        let log = background.join().unwrap();
        for outcome in outcomes {
            match outcome {
                // Delivered: it was sent, so the login and its persist were carried out.
                Final::Done(Outcome::Deliver) => assert_eq!(log, [Did::Login, Did::Persist(1)]),
                Final::Stopped => {}
                other => panic!("{other:?}"),
            }
        }
    });
}

// ---- the world ------------------------------------------------------------------------------

fn check(model: impl Fn() + Sync + Send + 'static) {
    // `Builder::new` reads `LOOM_MAX_PREEMPTIONS` and friends; the bound here is the default.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(PREEMPTIONS));
    builder.check(model);
}

/// What a caller ended with.
#[derive(Debug, PartialEq, Eq)]
enum Final {
    Done(Outcome),
    Stopped,
}

/// What the background carried out, in order.
#[derive(Debug, PartialEq, Eq)]
enum Did {
    Login,
    Refresh,
    Persist(u64),
    Clear,
    Revoke,
}

struct World {
    core: Core,
    /// The newest generation whose persist the background finished.
    persisted: AtomicU64,
}

impl World {
    fn fresh() -> Arc<World> {
        Arc::new(World::around(Session::new(Config::default(), NOW), 0))
    }

    /// Restored from the store: `at-1`, generation 1, durable already.
    fn restored() -> Arc<World> {
        let snapshot = Snapshot {
            access_token: AccessToken::new("at-1"),
            refresh_token: Some(RefreshToken::new("rt-1")),
            expires_at: None,
        };
        let session = Session::restore(Config::default(), snapshot, NOW, UnixTime::from_millis(0));
        Arc::new(World::around(session, 1))
    }

    fn around(session: Session, persisted: u64) -> World {
        World {
            core: Core::new(session, Box::new(|_| {})),
            persisted: AtomicU64::new(persisted),
        }
    }

    /// One caller's whole request: submit, wait, send, respond (`first` to the first send,
    /// `Accepted` to a resend), until its final outcome.
    fn call(&self, first: Verdict) -> Final {
        self.call_with(first, false)
    }

    /// [`World::call`]; with `repoll`, every wait starts with one poll whose waker is dropped.
    fn call_with(&self, first: Verdict, repoll: bool) -> Final {
        let (id, mut next) = self.core.submit(RequestSpec::bearer(), NOW);
        let Some(id) = id else {
            return Final::Stopped;
        };
        let mut sends = 0;
        let outcome = loop {
            let step = match next.take() {
                Some(step) => step,
                None => match repoll.then(|| self.poll_once(id)) {
                    Some(Poll::Ready(step)) => step,
                    _ => block_on(poll_fn(|cx| self.core.poll_step(id, cx.waker()))),
                },
            };
            match step {
                Step::Send { attempt, token } => {
                    let token = token.expect("a bearer request carries a token");
                    let generation: u64 = token
                        .expose_secret()
                        .strip_prefix("at-")
                        .and_then(|n| n.parse().ok())
                        .expect("a token of this test");
                    assert!(
                        generation <= self.persisted.load(SeqCst),
                        "P7: sent with generation {generation} before its persist finished"
                    );
                    sends += 1;
                    assert!(sends <= 2, "sent more than 1 + max_retries times");
                    let verdict = if attempt == 1 {
                        first
                    } else {
                        Verdict::Accepted
                    };
                    next = self.core.respond(id, attempt, verdict, NOW);
                }
                Step::Done(outcome) => break Final::Done(outcome),
                Step::Stopped => break Final::Stopped,
                _ => unreachable!("no other step"),
            }
        };
        if !self.core.is_stopped() {
            // Exactly once: the core forgot the request, no second outcome waits for it.
            assert_eq!(self.poll_once(id), Poll::Ready(Step::Stopped));
        }
        outcome
    }

    /// Polls `id` once, without waiting.
    fn poll_once(&self, id: auth_core::RequestId) -> Poll<Step> {
        block_on(poll_fn(|cx| {
            Poll::Ready(self.core.poll_step(id, cx.waker()))
        }))
    }

    /// The runtime: carries out the work in order (login and refresh answered in place with
    /// the next generation's tokens), arms the timer, waits; until the core stops.
    fn spawn_background(world: &Arc<World>) -> thread::JoinHandle<Vec<Did>> {
        let world = Arc::clone(world);
        thread::spawn(move || {
            let mut log = Vec::new();
            let mut issued = world.persisted.load(SeqCst);
            loop {
                while let Some(work) = world.core.take_work() {
                    world.carry_out(work, &mut issued, &mut log);
                }
                if world.core.is_stopped() {
                    break log;
                }
                world.core.next_deadline();
                block_on(poll_fn(|cx| world.core.poll_background(cx.waker())));
            }
        })
    }

    fn carry_out(&self, work: Work, issued: &mut u64, log: &mut Vec<Did>) {
        match work {
            Work::Login { op } => {
                log.push(Did::Login);
                *issued += 1;
                self.core.login_done(op, Ok(tokens(*issued)), NOW);
            }
            Work::Refresh { op, .. } => {
                log.push(Did::Refresh);
                *issued += 1;
                self.core.refresh_done(op, Ok(tokens(*issued)), NOW);
            }
            Work::Persist { persist } => {
                let generation = persist.generation.0;
                assert_eq!(
                    persist.access_token.expose_secret(),
                    format!("at-{generation}")
                );
                log.push(Did::Persist(generation));
                // The store write is done: record it, then report.
                self.persisted.store(generation, SeqCst);
                self.core.persisted(persist.generation);
            }
            Work::ClearStore { logout } => {
                log.push(Did::Clear);
                self.core.cleared(logout, Ok(()));
            }
            Work::Revoke { .. } => log.push(Did::Revoke),
            _ => unreachable!("no other work"),
        }
    }
}

fn tokens(generation: u64) -> TokenSet {
    TokenSet::new(AccessToken::new(format!("at-{generation}")))
        .with_refresh_token(RefreshToken::new(format!("rt-{generation}")))
}
