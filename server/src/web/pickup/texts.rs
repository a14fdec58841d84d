//! What the pickup pages tell a person after a wrong entry, or when an attempt was refused
//! because it came too soon: every number and time is the one the domain computed
//! (`messages::Attempts`), and each sentence states only what will happen.

use time::OffsetDateTime;

use crate::messages::{Attempts, Limit, clock_text};

/// `1 more wrong entry`, `3 more wrong entries`.
fn more_wrong(n: u32) -> String {
    if n == 1 {
        "1 more wrong entry".to_owned()
    } else {
        format!("{n} more wrong entries")
    }
}

/// Whole seconds from now until `until`, at least 1.
pub fn seconds_until(until: OffsetDateTime) -> i64 {
    let wait = until - OffsetDateTime::now_utc();
    (wait.whole_seconds() + i64::from(wait.subsec_nanoseconds() > 0)).max(1)
}

/// `Please wait 2 seconds (until …) before you try again.`
pub fn wait(until: OffsetDateTime) -> String {
    let seconds = seconds_until(until);
    let unit = if seconds == 1 { "second" } else { "seconds" };
    format!(
        "Please wait {seconds} {unit} (until {}) before you try again.",
        clock_text(until)
    )
}

/// After a wrong code, link secret or passphrase: what the code still takes, what comes next
/// for this network and after how many wrong entries, and the wait before the next try.
pub fn after_wrong_entry(a: &Attempts) -> String {
    let mut parts = Vec::new();
    match a.code_left {
        Some(0) => parts.push("This code cannot be used any more: ask for a new one.".to_owned()),
        Some(n) => parts.push(format!("This code stops working after {}.", more_wrong(n))),
        None => {}
    }
    let n = more_wrong(a.remaining);
    parts.push(match a.then {
        Limit::Wait => format!(
            "After {n} from your network, it will have to wait before each new try (a few \
             seconds at first, longer each time)."
        ),
        Limit::Blocked { minutes } => format!(
            "After {n} from your network, it will be blocked from this message for {minutes} \
             minutes."
        ),
        Limit::Locked => format!(
            "After {n}, the message will be locked for everyone until you unlock it with a new \
             code (after a wait) or the sender unlocks it."
        ),
    });
    if let Some(until) = a.wait_until {
        parts.push(wait(until));
    }
    parts.join(" ")
}

/// An attempt refused because it came before the wait was over.
pub fn too_soon(until: OffsetDateTime) -> String {
    format!(
        "You tried again too soon after wrong entries, so this try was not counted. {}",
        wait(until)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_follows_the_numbers() {
        let a = Attempts {
            code_left: Some(1),
            remaining: 2,
            then: Limit::Blocked { minutes: 60 },
            wait_until: None,
        };
        assert_eq!(
            after_wrong_entry(&a),
            "This code stops working after 1 more wrong entry. After 2 more wrong entries from \
             your network, it will be blocked from this message for 60 minutes."
        );
        let a = Attempts {
            code_left: None,
            remaining: 1,
            then: Limit::Wait,
            wait_until: None,
        };
        assert!(after_wrong_entry(&a).starts_with("After 1 more wrong entry from your network"));
    }
}
