//! Per-client limits on the entry points anyone can reach without credentials, and the
//! bookkeeping that keeps strangers from writing the audit log at will.
//!
//! Two mechanisms, one per concern:
//!
//! - [`Throttle`]: a GCRA rate limiter per client ([`governor`]) for each entry point: form
//!   posts to pickup pages, failed API authentications, SMTP connections, failed SMTP AUTH (per
//!   client and per relay name). A client over its budget is refused before any work is done
//!   (`429`, or `421` on SMTP) until the budget refills at the configured rate. Budgets that
//!   count failures (API tokens, SMTP AUTH) are spent only when a failure happens; a client
//!   that ran out is then refused *before* the next attempt costs anything (no token lookup,
//!   no Argon2id), until the wait the limiter named has passed.
//! - [`RefusalLog`]: repeated refusals of one kind from one client are audited one by one only
//!   up to `audit_refusals_per_window` per window; the rest are counted, and when the window
//!   ends one `refusals_counted` event records the kind, the client and the count. So a flood
//!   from one client adds at most `audit_refusals_per_window + 1` rows per kind and window,
//!   while an occasional mistake of a real person is audited as before.
//!
//! Clients are keyed by IP address; IPv6 addresses by their /64 prefix, which one host
//! usually holds whole. Both mechanisms live in memory: they bound how fast a client can try,
//! which restarts do not help an attacker with much, while counters that must survive a
//! restart (a recipient's failed guesses) live in the database.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;

use crate::audit::{Action, Event, actor};
use crate::clock::{UnixMillis, format_rfc3339, now_ms};
use crate::config::Config;
use crate::net::ClientKey;

/// The entry points with a per-client budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gate {
    /// Form posts to pickup pages: code, verify, open, download.
    PickupPost,
    /// API requests whose bearer token was not accepted.
    ApiAuthFailure,
    /// New SMTP connections.
    SmtpConnect,
    /// Failed SMTP AUTH attempts.
    SmtpAuthFailure,
    /// Failed staff sign-ins (password, TOTP or recovery code).
    StaffSigninFailure,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds, at least one (for `Retry-After` and for people).
    pub fn seconds(self) -> u64 {
        self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)
    }
}

/// The rate limiters, one per [`Gate`], plus one per relay name for SMTP AUTH failures.
pub struct Throttle {
    pickup: DefaultKeyedRateLimiter<ClientKey>,
    api_auth: DefaultKeyedRateLimiter<ClientKey>,
    smtp_connect: DefaultKeyedRateLimiter<ClientKey>,
    smtp_auth: DefaultKeyedRateLimiter<ClientKey>,
    smtp_auth_per_name: DefaultKeyedRateLimiter<String>,
    staff_signin: DefaultKeyedRateLimiter<ClientKey>,
    /// Until when a failure budget that ran out refuses attempts up front.
    spent: Mutex<HashMap<Spent, Instant>>,
    clock: DefaultClock,
    /// Repeated refusals, counted.
    pub refusals: RefusalLog,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

/// A failure budget that ran out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Spent {
    Client(Gate, ClientKey),
    RelayName(String),
}

/// `n` per minute, all of it available at once.
fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Throttle {
    pub fn new(config: &Config) -> Self {
        Self {
            pickup: RateLimiter::keyed(per_minute(config.pickup_posts_per_minute)),
            api_auth: RateLimiter::keyed(per_minute(config.api_auth_failures_per_minute)),
            smtp_connect: RateLimiter::keyed(per_minute(config.smtp_connections_per_minute)),
            smtp_auth: RateLimiter::keyed(per_minute(config.smtp_auth_failures_per_minute)),
            smtp_auth_per_name: RateLimiter::keyed(per_minute(
                config.smtp_auth_failures_per_minute,
            )),
            staff_signin: RateLimiter::keyed(per_minute(config.staff_signin_failures_per_minute)),
            spent: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
            refusals: RefusalLog::new(config),
        }
    }

    fn limiter(&self, gate: Gate) -> &DefaultKeyedRateLimiter<ClientKey> {
        match gate {
            Gate::PickupPost => &self.pickup,
            Gate::ApiAuthFailure => &self.api_auth,
            Gate::SmtpConnect => &self.smtp_connect,
            Gate::SmtpAuthFailure => &self.smtp_auth,
            Gate::StaffSigninFailure => &self.staff_signin,
        }
    }

    /// Spend one unit of `ip`'s budget at `gate`; refused when it is spent.
    pub fn check(&self, gate: Gate, ip: IpAddr) -> Result<(), RetryAfter> {
        self.limiter(gate)
            .check_key(&ClientKey::of(ip))
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now())))
    }

    fn spent_map(&self) -> std::sync::MutexGuard<'_, HashMap<Spent, Instant>> {
        self.spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `key` must still wait, if its failure budget ran out.
    fn still_spent(&self, key: &Spent) -> Option<RetryAfter> {
        let mut spent = self.spent_map();
        let until = *spent.get(key)?;
        let now = Instant::now();
        if until <= now {
            spent.remove(key);
            return None;
        }
        Some(RetryAfter(until - now))
    }

    fn remember_spent(&self, key: Spent, wait: RetryAfter) -> RetryAfter {
        let mut spent = self.spent_map();
        if spent.len() < MAX_TRACKED {
            spent.insert(key, Instant::now() + wait.0);
        }
        wait
    }

    /// For a gate that counts failures: refused up front while `ip`'s budget is spent.
    pub fn failures_allowed(&self, gate: Gate, ip: IpAddr) -> Result<(), RetryAfter> {
        match self.still_spent(&Spent::Client(gate, ClientKey::of(ip))) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// A failure at `gate` from `ip`: spends one unit; when none was left, refused (and the
    /// client is refused up front by [`Throttle::failures_allowed`] until the wait is over).
    pub fn failed(&self, gate: Gate, ip: IpAddr) -> Result<(), RetryAfter> {
        self.check(gate, ip)
            .map_err(|wait| self.remember_spent(Spent::Client(gate, ClientKey::of(ip)), wait))
    }

    fn relay_key(name: &str) -> Spent {
        Spent::RelayName(name.chars().take(64).collect::<String>().to_lowercase())
    }

    /// Whether an SMTP AUTH for relay `name` from `ip` may be tried now: refused while the
    /// client's or the name's failure budget is spent.
    pub fn smtp_auth_allowed(&self, ip: IpAddr, name: &str) -> Result<(), RetryAfter> {
        self.failures_allowed(Gate::SmtpAuthFailure, ip)?;
        match self.still_spent(&Self::relay_key(name)) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// A failed SMTP AUTH for relay `name` from `ip`: spends one unit of both budgets, so
    /// guessing one relay's password from many addresses is limited too.
    pub fn smtp_auth_failed(&self, ip: IpAddr, name: &str) -> Result<(), RetryAfter> {
        let by_ip = self.failed(Gate::SmtpAuthFailure, ip);
        let key = Self::relay_key(name);
        let Spent::RelayName(name) = &key else {
            return by_ip;
        };
        let by_name = self
            .smtp_auth_per_name
            .check_key(name)
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now())));
        let by_name = by_name.map_err(|wait| self.remember_spent(key.clone(), wait));
        by_ip.and(by_name)
    }

    /// Forget clients whose budgets are full again (the periodic jobs call this).
    pub fn forget_idle(&self) {
        let now = Instant::now();
        self.spent_map().retain(|_, until| *until > now);
        self.pickup.retain_recent();
        self.api_auth.retain_recent();
        self.smtp_connect.retain_recent();
        self.smtp_auth.retain_recent();
        self.smtp_auth_per_name.retain_recent();
        self.staff_signin.retain_recent();
    }
}

/// The kinds of refusal a stranger can repeat at will.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Refused {
    /// An API request with an unknown, revoked or malformed bearer token.
    TokenRejected,
    /// A client over one of its [`Throttle`] budgets.
    Throttled,
    /// A one-time code asked for beyond the hourly limit.
    CodeRateLimited,
    /// A code entered after it was used, expired or exhausted.
    CodeExpired,
    /// A pickup attempt while the client must wait (back-off) or is blocked.
    PickupBlocked,
    /// An SMTP connection or command refused by policy.
    SmtpRefused,
    /// A failed SMTP AUTH.
    RelayAuthFailed,
    /// A failed staff sign-in (unknown email, wrong password, TOTP or recovery code, locked
    /// account).
    StaffSigninFailed,
}

/// Whether a refusal gets its own audit row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Audit it as usual.
    Audit,
    /// Only counted; the window's `refusals_counted` event will include it.
    Counted,
}

#[derive(Debug)]
struct Window {
    started: UnixMillis,
    last: UnixMillis,
    audited: u32,
    counted: u64,
}

/// Counts repeated refusals per kind and client in fixed windows.
#[derive(Debug)]
pub struct RefusalLog {
    windows: Mutex<HashMap<(Refused, Option<ClientKey>), Window>>,
    window_ms: i64,
    individually: u32,
}

/// Clients tracked at once; beyond it new clients share one entry (`ip` empty), so memory stays
/// bounded however many addresses a flood comes from.
const MAX_TRACKED: usize = 10_000;

impl RefusalLog {
    pub fn new(config: &Config) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            window_ms: i64::from(config.audit_refusal_window_seconds.max(1)) * 1000,
            individually: config.audit_refusals_per_window,
        }
    }

    /// Note one refusal of `kind` from `ip`: the first `audit_refusals_per_window` of each
    /// window are audited one by one, the rest only counted.
    pub fn note(&self, kind: Refused, ip: Option<IpAddr>) -> Disposition {
        let now = now_ms();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut key = (kind, ip.map(ClientKey::of));
        if !windows.contains_key(&key) && windows.len() >= MAX_TRACKED {
            key.1 = None;
        }
        let window = windows.entry(key).or_insert(Window {
            started: now,
            last: now,
            audited: 0,
            counted: 0,
        });
        window.last = now;
        if window.audited < self.individually {
            window.audited += 1;
            Disposition::Audit
        } else {
            window.counted += 1;
            Disposition::Counted
        }
    }

    /// The `refusals_counted` events of windows that have ended (every window with `all`, at
    /// shutdown), removing them. Windows that only audited are dropped without an event.
    pub fn take_due(&self, all: bool) -> Vec<Event> {
        let now = now_ms();
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due: Vec<_> = windows
            .iter()
            .filter(|(_, w)| all || now - w.started >= self.window_ms)
            .map(|(k, _)| *k)
            .collect();
        let mut events = Vec::new();
        for key in due {
            let Some(w) = windows.remove(&key) else {
                continue;
            };
            if w.counted == 0 {
                continue;
            }
            let kind: &'static str = key.0.into();
            let mut event =
                Event::new(actor::ANONYMOUS, Action::RefusalsCounted).with_detail(json!({
                    "kind": kind,
                    "count": w.counted,
                    "client": key.1.map(|c| c.label()),
                    "from": format_rfc3339(w.started),
                    "to": format_rfc3339(w.last),
                }));
            if let Some(client) = key.1 {
                event = event.with_ip(client.label());
            }
            events.push(event);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(set: &[(&str, u32)]) -> Config {
        let mut builder = Config::builder();
        for (k, v) in set {
            builder = builder.set(k, *v);
        }
        builder.build().unwrap_or_else(|e| panic!("config: {e}"))
    }

    /// Proof: a budget of 3 per minute lets 3 through and refuses the 4th with a wait, and
    /// another client is not affected.
    #[test]
    fn a_client_over_its_budget_is_refused_and_others_are_not() {
        let throttle = Throttle::new(&config(&[("pickup_posts_per_minute", 3)]));
        let one = IpAddr::from([127, 0, 0, 2]);
        let two = IpAddr::from([127, 0, 0, 3]);
        for _ in 0..3 {
            assert_eq!(throttle.check(Gate::PickupPost, one), Ok(()));
        }
        let refused = throttle.check(Gate::PickupPost, one);
        assert!(
            refused.is_err_and(|r| (1..=20).contains(&r.seconds())),
            "{refused:?}"
        );
        assert_eq!(throttle.check(Gate::PickupPost, two), Ok(()));
    }

    /// Proof: a failure budget of 2 refuses the third failure, and from then on the client is
    /// refused before trying, while another client and another relay name are not.
    #[test]
    fn a_spent_failure_budget_refuses_up_front() {
        let throttle = Throttle::new(&config(&[("smtp_auth_failures_per_minute", 2)]));
        let one = IpAddr::from([127, 0, 0, 2]);
        let two = IpAddr::from([127, 0, 0, 3]);
        assert_eq!(throttle.smtp_auth_allowed(one, "relay-a"), Ok(()));
        assert_eq!(throttle.smtp_auth_failed(one, "relay-a"), Ok(()));
        assert_eq!(throttle.smtp_auth_failed(one, "relay-b"), Ok(()));
        assert!(throttle.smtp_auth_failed(one, "relay-c").is_err());
        assert!(
            throttle.smtp_auth_allowed(one, "relay-d").is_err(),
            "this client is out"
        );
        assert_eq!(throttle.smtp_auth_allowed(two, "relay-d"), Ok(()));
        // The name's own budget: two more failures for relay-a from elsewhere spend it.
        assert_eq!(throttle.smtp_auth_failed(two, "relay-a"), Ok(()));
        assert!(throttle.smtp_auth_failed(two, "Relay-A").is_err());
        let three = IpAddr::from([127, 0, 0, 4]);
        assert!(
            throttle.smtp_auth_allowed(three, "relay-a").is_err(),
            "the name is out"
        );
        assert_eq!(throttle.smtp_auth_allowed(three, "relay-e"), Ok(()));
    }

    /// Proof: of 50 refusals from one client, 3 are audited and 47 counted into one event;
    /// another client's refusals are audited on their own.
    #[test]
    fn repeated_refusals_are_counted_into_one_event() {
        let log = RefusalLog::new(&config(&[("audit_refusals_per_window", 3)]));
        let flood = Some(IpAddr::from([127, 0, 0, 2]));
        let audited = (0..50)
            .filter(|_| log.note(Refused::TokenRejected, flood) == Disposition::Audit)
            .count();
        assert_eq!(audited, 3);
        assert_eq!(
            log.note(Refused::TokenRejected, Some(IpAddr::from([127, 0, 0, 3]))),
            Disposition::Audit
        );
        assert!(log.take_due(false).is_empty(), "the window has not ended");
        let events = log.take_due(true);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].action, Action::RefusalsCounted);
        assert_eq!(events[0].detail["count"], 47);
        assert_eq!(events[0].detail["kind"], "token_rejected");
        assert_eq!(events[0].ip.as_deref(), Some("127.0.0.2"));
        assert!(log.take_due(true).is_empty());
    }
}
