//! Connection caps: how many connections a listener holds at once, overall and per client IP.
//! A place is taken when a connection is accepted and given back when its [`Admitted`] (or
//! [`IpSlot`]) is dropped, so a connection that ends in any way, panics included, frees it.
//! Refusals are logged at a bounded rate ([`RefusalLog`]): a flood of refused connections must
//! not become a flood of log lines.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ClientKey;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The listener holds its most connections.
    Total,
    /// The client's IP holds its most connections.
    PerIp,
}

impl Refused {
    /// The reason in words, for logs and the audit trail.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Total => "too many connections",
            Self::PerIp => "too many connections from this address",
        }
    }
}

/// A total cap and a per-IP cap on one listener's connections.
#[derive(Debug)]
pub struct ConnCaps {
    total: Arc<Semaphore>,
    max_total: u32,
    per_ip: IpCounts,
}

/// An admitted connection's places in the counts; dropping it gives them back.
#[derive(Debug)]
pub struct Admitted {
    _total: OwnedSemaphorePermit,
    _ip: Option<IpSlot>,
}

impl Admitted {
    /// The place in the total (which a listener may hand on to another connection) and the
    /// place in the per-IP count.
    pub fn into_parts(self) -> (OwnedSemaphorePermit, Option<IpSlot>) {
        (self._total, self._ip)
    }
}

impl ConnCaps {
    /// At most `max_total` connections, and `max_per_ip` from one client IP.
    pub fn new(max_total: u32, max_per_ip: u32) -> Self {
        Self {
            total: Arc::new(Semaphore::new(max_total as usize)),
            max_total,
            per_ip: IpCounts::new(max_per_ip),
        }
    }

    /// Take a place for a connection from `ip`; `count_ip: false` exempts it from the per-IP
    /// cap (the total still applies). Never waits.
    pub fn admit(&self, ip: IpAddr, count_ip: bool) -> Result<Admitted, Refused> {
        let ip = self.ip_slot(ip, count_ip)?;
        let total = Arc::clone(&self.total)
            .try_acquire_owned()
            .map_err(|_| Refused::Total)?;
        Ok(Admitted {
            _total: total,
            _ip: ip,
        })
    }

    /// [`ConnCaps::admit`] into `place`, a place in the total given up by a connection that
    /// was closed to make room; the per-IP cap still applies.
    pub fn admit_into(
        &self,
        place: OwnedSemaphorePermit,
        ip: IpAddr,
        count_ip: bool,
    ) -> Result<Admitted, Refused> {
        Ok(Admitted {
            _ip: self.ip_slot(ip, count_ip)?,
            _total: place,
        })
    }

    fn ip_slot(&self, ip: IpAddr, count_ip: bool) -> Result<Option<IpSlot>, Refused> {
        match count_ip {
            true => Ok(Some(self.per_ip.take(ip).ok_or(Refused::PerIp)?)),
            false => Ok(None),
        }
    }

    /// Resolves once every admitted connection has ended (for draining at shutdown).
    pub async fn all_closed(&self) {
        // The semaphore is never closed, so this only waits.
        let _all = self.total.acquire_many(self.max_total).await;
    }
}

/// Counts of connections (or sessions) per client — an IP address, or an IPv6 /64
/// ([`ClientKey`]), since one IPv6 host commonly holds a whole /64 — with a cap.
#[derive(Debug, Clone)]
pub struct IpCounts {
    max: u32,
    map: Arc<Mutex<HashMap<ClientKey, u32>>>,
}

impl IpCounts {
    pub fn new(max: u32) -> Self {
        Self {
            max,
            map: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for `ip`'s client (IPv4-mapped IPv6 addresses count as their IPv4 address, other
    /// IPv6 addresses as their /64), or `None` when it holds `max` already.
    pub fn take(&self, ip: IpAddr) -> Option<IpSlot> {
        let ip = ClientKey::of(ip);
        let mut map = lock(&self.map);
        let count = map.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            ip,
            map: Arc::clone(&self.map),
        })
    }
}

/// One place in an [`IpCounts`], given back on drop.
#[derive(Debug)]
pub struct IpSlot {
    ip: ClientKey,
    map: Arc<Mutex<HashMap<ClientKey, u32>>>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = lock(&self.map);
        if let Some(count) = map.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// The counts are plain numbers, right after any panic too: a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How often at most a listener logs refused connections.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs refused connections at most once every 10 s per listener, with the number refused
/// since the last such line. Refusals held back are reported by the next refusal or accepted
/// connection ([`RefusalLog::accepted`]) after the 10 s, or when the log is dropped at shutdown,
/// so a burst that stops is still counted.
#[derive(Debug)]
pub struct RefusalLog {
    listener: &'static str,
    state: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    logged_at: Option<Instant>,
    count: u64,
    last: Option<(SocketAddr, &'static str)>,
}

/// What one log line reports.
type Line = (u64, SocketAddr, &'static str);

impl RefusalLog {
    pub fn new(listener: &'static str) -> Self {
        Self {
            listener,
            state: Mutex::new(Pending::default()),
        }
    }

    /// Count a refused connection from `peer`, and log if the last line is old enough.
    pub fn refused(&self, peer: SocketAddr, reason: &'static str) {
        let line = self.count(peer, reason, Instant::now());
        self.log(line);
    }

    /// A connection was accepted: report refusals held back, if the last line is old enough.
    pub fn accepted(&self) {
        let line = self.due(Instant::now());
        self.log(line);
    }

    fn count(&self, peer: SocketAddr, reason: &'static str, now: Instant) -> Option<Line> {
        {
            let mut pending = lock(&self.state);
            pending.count += 1;
            pending.last = Some((peer, reason));
        }
        self.due(now)
    }

    /// The line to log now, if refusals are held back and the last line is 10 s old.
    fn due(&self, now: Instant) -> Option<Line> {
        let mut pending = lock(&self.state);
        if pending.count == 0
            || pending
                .logged_at
                .is_some_and(|at| now.saturating_duration_since(at) < LOG_EVERY)
        {
            return None;
        }
        pending.logged_at = Some(now);
        take(&mut pending)
    }

    fn log(&self, line: Option<Line>) {
        if let Some((refused, peer, reason)) = line {
            tracing::warn!(
                listener = self.listener,
                last_peer = %peer,
                last_reason = reason,
                refused,
                "connections refused over the caps (one line per 10 s at most; `refused` \
                 counts them since the last line)"
            );
        }
    }
}

fn take(pending: &mut Pending) -> Option<Line> {
    let count = std::mem::take(&mut pending.count);
    let (peer, reason) = pending.last.take()?;
    (count > 0).then_some((count, peer, reason))
}

impl Drop for RefusalLog {
    fn drop(&mut self) {
        let line = take(&mut lock(&self.state));
        self.log(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// Proof: the per-IP cap counts one address (its IPv4-mapped form too) and not others;
    /// the total cap counts every admitted connection, exempt ones included; dropping an
    /// admission gives both places back.
    #[test]
    fn caps_count_and_give_back() {
        let caps = ConnCaps::new(3, 2);
        let a = caps.admit(ip("192.0.2.1"), true);
        let b = caps.admit(ip("::ffff:192.0.2.1"), true);
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(
            caps.admit(ip("192.0.2.1"), true).err(),
            Some(Refused::PerIp)
        );
        let exempt = caps.admit(ip("192.0.2.1"), false);
        assert!(exempt.is_ok(), "exempt from the per-IP cap");
        assert_eq!(
            caps.admit(ip("192.0.2.2"), true).err(),
            Some(Refused::Total)
        );
        drop(a);
        assert!(caps.admit(ip("192.0.2.1"), true).is_ok());
        drop((b, exempt));
        assert!(lock(&caps.per_ip.map).is_empty());
        assert_eq!(caps.total.available_permits(), 3);
    }

    /// Proof: refusals are logged at most once per 10 s, and the ones held back are reported
    /// with their count by the next refusal or accepted connection after the 10 s.
    #[test]
    fn refusals_are_logged_at_a_bounded_rate_and_none_is_lost() {
        let log = RefusalLog::new("test");
        let peer = SocketAddr::from(([192, 0, 2, 1], 1));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(log.count(peer, "r", at(0)).map(|l| l.0), Some(1));
        for s in 1..9 {
            assert_eq!(log.count(peer, "r", at(s)), None, "logged again at {s} s");
        }
        assert_eq!(log.due(at(9)), None);
        assert_eq!(log.due(at(10)).map(|l| l.0), Some(8), "the held-back count");
        assert_eq!(log.due(at(30)), None, "nothing left to report");
        assert_eq!(log.count(peer, "r", at(31)).map(|l| l.0), Some(1));
    }
}
