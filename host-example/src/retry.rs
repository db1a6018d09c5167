//! Bounded retries that honour what the server says (`Retry-After`, RFC 9110 §10.2.3) and
//! otherwise back off exponentially with jitter.
//!
//! [`run`] is pure logic, generic over the operation: the attempt, the decision whether its
//! outcome may be retried, the sleep, the jitter source and the progress report are all
//! passed in, so tests drive it with recorded sleeps and scripted jitter. Production code
//! passes [`sleep_real`] and [`random_unit`]. [`call`] is the thin adapter for component
//! calls: it runs [`run`] with those, retries what [`classify_call_error`] says, and folds a
//! give-up into [`CallError::GaveUp`].
//!
//! What is retried is decided by the `classify` the caller passes to [`run`]
//! ([`classify_call_error`] for component calls), never by the loop itself:
//! - **Token-endpoint requests**: HTTP 429 and 5xx answers, and transport errors that may be
//!   transient (connection refused or reset, timeouts). A 429 or 503 does not consume an
//!   authorization code: a code is single-use once the server has *accepted* it (RFC 6749
//!   §4.1.2), and a server that answers 429/503 has not processed the request, so the code
//!   exchange is retried with the same code. A 4xx OAuth error (`invalid_grant`, …) is final.
//!   (After a timeout the server may have accepted the code and the answer been lost; the
//!   retry then gets `invalid_grant`, a final error, and loses nothing that had arrived.)
//!   A refresh is retried on the same terms. When a 502/504 or a timeout hides a refresh the
//!   server did process, its rotated token never reached us: the connection is lost with or
//!   without the retry (a server with reuse detection then revokes the grant; one with a
//!   reuse grace period answers the retry with fresh tokens), so retrying never makes it
//!   worse and sometimes saves it.
//! - **API calls**: only idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE; RFC 9110
//!   §9.2.2), since repeating a POST or PATCH whose answer was lost may apply it twice.
//!
//! The rules, and why:
//! - A server's `Retry-After` is honoured exactly, with no jitter, and is not capped by
//!   [`RetryPolicy::max_delay`]: the server knows when it will take the request again. If it
//!   asks for more than what is left of [`RetryPolicy::max_total_wait`] or of the caller's
//!   deadline, [`run`] gives up at once rather than waiting: an early retry would only be
//!   refused again.
//! - Without a hint, retry *n* waits `base_delay * 2^(n-1)` capped at `max_delay`, of which
//!   a random 50–100 % is taken ("equal jitter": clients that failed together do not retry
//!   together, yet each still waits at least half the backoff). That wait is clipped to what
//!   is left of the budget and the deadline; when nothing is left, [`run`] gives up.
//! - [`RetryPolicy::max_attempts`] bounds the attempts, the first one included.

use std::fmt;
use std::time::{Duration, Instant};

use crate::runtime::CallError;
use crate::types::{Error, TransportError};

/// How long and how often to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most attempts to make, the first one included; 0 counts as 1.
    pub max_attempts: u32,
    /// The most time to spend waiting between attempts, summed over all waits (the time the
    /// attempts themselves take is not counted; a deadline bounds that).
    pub max_total_wait: Duration,
    /// The backoff before the first retry when the server gives no `Retry-After`; doubled for
    /// each further retry.
    pub base_delay: Duration,
    /// The cap of one backoff wait, before jitter. A server's `Retry-After` is not capped.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The defaults: 4 attempts, at most 30 s of waiting in all, backoff from 1 s doubling up
    /// to 10 s.
    pub const DEFAULT: Self = Self {
        max_attempts: 4,
        max_total_wait: Duration::from_secs(30),
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(10),
    };

    /// No retries: one attempt, whatever its outcome.
    pub const NONE: Self = Self {
        max_attempts: 1,
        ..Self::DEFAULT
    };

    /// The backoff before retry number `retry` (1-based), before jitter:
    /// `base_delay * 2^(retry-1)`, capped at `max_delay`. Saturates instead of overflowing.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }
}

impl Default for RetryPolicy {
    /// [`RetryPolicy::DEFAULT`].
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why an attempt's outcome may be retried, and the server's hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retryable {
    /// What went wrong, for the progress line, e.g. "the server answered HTTP 429".
    pub reason: String,
    /// The server's `Retry-After`, when it sent one that parsed.
    pub retry_after: Option<Duration>,
}

/// What the caller is told before each wait, e.g. for a progress line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryNotice {
    /// The attempt that failed, 1-based.
    pub attempt: u32,
    /// The policy's attempt limit.
    pub max_attempts: u32,
    /// How long [`run`] is about to wait.
    pub delay: Duration,
    /// The [`Retryable::reason`] of the failed attempt.
    pub reason: String,
    /// Whether `delay` is the server's `Retry-After` (else it is backoff).
    pub from_server: bool,
}

impl fmt::Display for RetryNotice {
    /// E.g. "attempt 1 of 4 failed (the server answered HTTP 429); retrying in 2.0 s, as the
    /// server asked".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "attempt {} of {} failed ({}); retrying in {}",
            self.attempt,
            self.max_attempts,
            self.reason,
            Seconds(self.delay)
        )?;
        if self.from_server {
            f.write_str(", as the server asked")?;
        }
        Ok(())
    }
}

/// Why [`run`] stopped retrying an outcome that was still retryable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaveUp {
    /// The policy's `max_attempts` were made.
    Attempts,
    /// The next wait would pass the policy's `max_total_wait`.
    TotalWait {
        /// The wait the server asked for, or the backoff that was due.
        needed: Duration,
        /// What was left of `max_total_wait`.
        left: Duration,
    },
    /// The next wait would pass the caller's deadline.
    Deadline {
        /// The wait the server asked for, or the backoff that was due.
        needed: Duration,
        /// The time that was left until the deadline.
        left: Duration,
    },
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attempts => f.write_str("the attempt limit was reached"),
            Self::TotalWait { needed, left } => write!(
                f,
                "the next wait of {} is more than the {} left of the retry budget",
                Seconds(*needed),
                Seconds(*left)
            ),
            Self::Deadline { needed, left } => write!(
                f,
                "the next wait of {} would pass the deadline, {} away",
                Seconds(*needed),
                Seconds(*left)
            ),
        }
    }
}

/// The outcome of the last attempt, with how many attempts were made and how long was
/// waited between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempts<T> {
    /// The last attempt's outcome: final, or still retryable if `gave_up` is set.
    pub result: T,
    /// How many attempts were made, at least 1.
    pub attempts: u32,
    /// The sum of the waits between attempts.
    pub waited: Duration,
    /// Why retrying stopped while the outcome was still retryable; `None` when `classify`
    /// called it final.
    pub gave_up: Option<GaveUp>,
}

impl<T> fmt::Display for Attempts<T> {
    /// A summary to append to an error: "gave up after 4 attempts over 7.2 s", with the
    /// reason when it was not the attempt limit; "2 attempts over 1.0 s" when the last
    /// outcome was final.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.gave_up.is_some() {
            f.write_str("gave up after ")?;
        }
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "{} attempt{plural} over {}",
            self.attempts,
            Seconds(self.waited)
        )?;
        match &self.gave_up {
            Some(reason @ (GaveUp::TotalWait { .. } | GaveUp::Deadline { .. })) => {
                write!(f, ": {reason}")
            }
            Some(GaveUp::Attempts) | None => Ok(()),
        }
    }
}

/// Makes attempts until one is final, retrying as `policy` allows.
///
/// - `deadline`: retrying stops when the next wait would pass it (read with
///   [`Instant::now`] before each wait, so the attempts' own time counts).
/// - `classify`: `None` for a final outcome (success, or a failure not worth retrying),
///   else why it may be retried and the server's `Retry-After`.
/// - `notify`: called before every wait, with what failed and how long the wait is.
/// - `sleep`: performs a wait ([`sleep_real`] in production).
/// - `jitter`: a number in `[0, 1)` ([`random_unit`] in production); called once per backoff
///   wait, never for a `Retry-After`. Values outside `[0, 1]` are clamped; NaN counts as 0.
/// - `attempt`: makes attempt number `n` (1-based).
///
/// Returns the last outcome, the number of attempts, the total wait and, if the outcome is
/// still retryable, why retrying stopped. Never panics on any policy.
pub fn run<T>(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    mut classify: impl FnMut(&T) -> Option<Retryable>,
    notify: &mut dyn FnMut(&RetryNotice),
    sleep: &mut dyn FnMut(Duration),
    jitter: &mut dyn FnMut() -> f64,
    mut attempt: impl FnMut(u32) -> T,
) -> Attempts<T> {
    let max_attempts = policy.max_attempts.max(1);
    let mut waited = Duration::ZERO;
    let mut number = 1;
    loop {
        let result = attempt(number);
        let finish = |result, gave_up| Attempts {
            result,
            attempts: number,
            waited,
            gave_up,
        };
        let Some(retryable) = classify(&result) else {
            return finish(result, None);
        };
        if number >= max_attempts {
            return finish(result, Some(GaveUp::Attempts));
        }
        let budget_left = policy.max_total_wait.saturating_sub(waited);
        let deadline_left =
            deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        let (delay, from_server) = match next_wait(
            policy,
            number,
            retryable.retry_after,
            budget_left,
            deadline_left,
            jitter,
        ) {
            Ok(wait) => wait,
            Err(gave_up) => return finish(result, Some(gave_up)),
        };
        notify(&RetryNotice {
            attempt: number,
            max_attempts,
            delay,
            reason: retryable.reason,
            from_server,
        });
        sleep(delay);
        waited = waited.saturating_add(delay);
        number += 1;
    }
}

/// The wait after failed attempt `number` and whether it is the server's, or why to give up.
fn next_wait(
    policy: &RetryPolicy,
    number: u32,
    retry_after: Option<Duration>,
    budget_left: Duration,
    deadline_left: Option<Duration>,
    jitter: &mut dyn FnMut() -> f64,
) -> Result<(Duration, bool), GaveUp> {
    if let Some(needed) = retry_after {
        // Waiting less than the server asked is pointless, so never clip its hint.
        if needed > budget_left {
            return Err(GaveUp::TotalWait {
                needed,
                left: budget_left,
            });
        }
        if let Some(left) = deadline_left
            && needed > left
        {
            return Err(GaveUp::Deadline { needed, left });
        }
        return Ok((needed, true));
    }
    let needed = equal_jitter(policy.backoff(number), jitter());
    // Backoff is only a guess, so a shorter wait is still worth it; no wait at all is not.
    if budget_left.is_zero() && !needed.is_zero() {
        return Err(GaveUp::TotalWait {
            needed,
            left: budget_left,
        });
    }
    if let Some(left) = deadline_left
        && left.is_zero()
        && !needed.is_zero()
    {
        return Err(GaveUp::Deadline { needed, left });
    }
    let clipped = needed
        .min(budget_left)
        .min(deadline_left.unwrap_or(Duration::MAX));
    Ok((clipped, false))
}

/// `delay * (1 + unit) / 2`: between half of `delay` (`unit` 0) and all of it (`unit` 1).
/// Computed in integer nanoseconds from `unit` rounded to millionths, so that the result is
/// exact and cannot overflow.
fn equal_jitter(delay: Duration, unit: f64) -> Duration {
    const MILLION: u128 = 1_000_000;
    const NANOS_PER_SECOND: u128 = 1_000_000_000;
    let unit = if unit.is_nan() {
        0.0
    } else {
        unit.clamp(0.0, 1.0)
    };
    // In [0, 1e6] after the clamp, so the cast is exact.
    let millionths = (unit * 1_000_000.0).round() as u128;
    let total = delay.as_nanos();
    let half = total / 2;
    let nanos = half + (total - half) * millionths / MILLION;
    // `nanos <= total`, so the seconds fit a u64 and the remainder a u32.
    Duration::new(
        u64::try_from(nanos / NANOS_PER_SECOND).unwrap_or(u64::MAX),
        u32::try_from(nanos % NANOS_PER_SECOND).unwrap_or(0),
    )
}

/// Runs a component call (a token-endpoint request) with retries by `policy`: what
/// [`classify_call_error`] calls retryable is tried again, waiting with [`sleep_real`] and
/// [`random_unit`] jitter, telling `notify` before each wait.
///
/// Returns the first final outcome as it is. When retrying stops on an error that was still
/// retryable, returns [`CallError::GaveUp`] with the attempt count, the total wait, the reason
/// and the last error. The operation gets no attempt number; it must be safe to repeat
/// (see the module documentation).
pub fn call<T>(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    notify: &mut dyn FnMut(&RetryNotice),
    mut operation: impl FnMut() -> Result<T, CallError>,
) -> Result<T, CallError> {
    let outcome = run(
        policy,
        deadline,
        |result: &Result<T, CallError>| result.as_ref().err().and_then(classify_call_error),
        notify,
        &mut sleep_real,
        &mut random_unit,
        |_| operation(),
    );
    match (outcome.result, outcome.gave_up) {
        (Err(last), Some(reason)) => Err(CallError::GaveUp {
            attempts: outcome.attempts,
            waited: outcome.waited,
            reason,
            last: Box::new(last),
        }),
        (result, _) => result,
    }
}

/// Whether a failed component call is worth retrying, and the server's hint:
/// - the server was unavailable (HTTP 429 or 5xx, the component's `server-unavailable`),
///   with its `Retry-After`;
/// - the connection failed or timed out: a transient network failure.
///
/// Everything else is final: the server's OAuth errors, a denied destination, TLS failures
/// (a certificate does not fix itself), invalid responses, configuration errors, sandbox
/// limits, traps, and a [`CallError::GaveUp`] from an inner retry loop.
pub fn classify_call_error(error: &CallError) -> Option<Retryable> {
    let CallError::Connector(error) = error else {
        return None;
    };
    match error {
        Error::ServerUnavailable(unavailable) => Some(Retryable {
            reason: format!("the server answered HTTP {}", unavailable.status),
            retry_after: unavailable.retry_after_seconds.map(Duration::from_secs),
        }),
        Error::Transport(TransportError::ConnectionFailed(_)) => Some(Retryable {
            reason: "the connection failed".to_owned(),
            retry_after: None,
        }),
        Error::Transport(TransportError::Timeout) => Some(Retryable {
            reason: "the request timed out".to_owned(),
            retry_after: None,
        }),
        _ => None,
    }
}

/// Sleeps the current thread for `delay`: the `sleep` to pass to [`run`] in production.
pub fn sleep_real(delay: Duration) {
    std::thread::sleep(delay);
}

/// A number uniform in `[0, 1)`: the `jitter` to pass to [`run`] in production.
///
/// Drawn from std's `RandomState`, whose keys are random per process and change with every
/// instance, so no random-number crate is needed. Not for secrets: it only spreads retries.
pub fn random_unit() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let bits = RandomState::new().hash_one(Instant::now());
    // The top 53 bits, the precision of an f64, scaled to [0, 1).
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A duration written in seconds with one decimal, e.g. "7.2 s".
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.1} s", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test outcome: success, or a failure that is retryable or not.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Outcome {
        Ok,
        /// HTTP 429 with this `Retry-After`, in seconds.
        TooMany(Option<u64>),
        /// A failure not worth retrying.
        Refused,
    }

    fn classify(outcome: &Outcome) -> Option<Retryable> {
        match outcome {
            Outcome::Ok | Outcome::Refused => None,
            Outcome::TooMany(seconds) => Some(Retryable {
                reason: "the server answered HTTP 429".to_owned(),
                retry_after: seconds.map(Duration::from_secs),
            }),
        }
    }

    /// What a run did: its result, the attempt numbers, the notices, the sleeps, and how
    /// many jitter values it drew.
    struct Record {
        attempts: Attempts<Outcome>,
        numbers: Vec<u32>,
        notices: Vec<RetryNotice>,
        sleeps: Vec<Duration>,
        jitter_draws: usize,
    }

    /// Runs `policy` over scripted outcomes (the last repeats) with a constant jitter.
    fn run_script(
        policy: &RetryPolicy,
        deadline: Option<Instant>,
        jitter_value: f64,
        script: &[Outcome],
    ) -> Record {
        let mut numbers = Vec::new();
        let mut notices = Vec::new();
        let mut sleeps = Vec::new();
        let mut jitter_draws = 0;
        let attempts = run(
            policy,
            deadline,
            classify,
            &mut |notice| notices.push(notice.clone()),
            &mut |delay| sleeps.push(delay),
            &mut || {
                jitter_draws += 1;
                jitter_value
            },
            |number| {
                numbers.push(number);
                let index = usize::try_from(number - 1).unwrap().min(script.len() - 1);
                script[index]
            },
        );
        Record {
            attempts,
            numbers,
            notices,
            sleeps,
            jitter_draws,
        }
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn default_and_none_policies() {
        assert_eq!(
            RetryPolicy::default(),
            RetryPolicy {
                max_attempts: 4,
                max_total_wait: secs(30),
                base_delay: secs(1),
                max_delay: secs(10),
            }
        );
        assert_eq!(RetryPolicy::NONE.max_attempts, 1);
    }

    #[test]
    fn success_on_the_first_try() {
        let record = run_script(&RetryPolicy::DEFAULT, None, 0.5, &[Outcome::Ok]);
        assert_eq!(
            record.attempts,
            Attempts {
                result: Outcome::Ok,
                attempts: 1,
                waited: Duration::ZERO,
                gave_up: None,
            }
        );
        assert_eq!(record.numbers, [1]);
        assert_eq!(record.notices, []);
        assert_eq!(record.sleeps, []);
        assert_eq!(record.jitter_draws, 0);
    }

    #[test]
    fn retry_after_is_honoured_exactly() {
        let record = run_script(
            &RetryPolicy::DEFAULT,
            None,
            0.5,
            &[
                Outcome::TooMany(Some(1)),
                Outcome::TooMany(Some(1)),
                Outcome::Ok,
            ],
        );
        assert_eq!(
            record.attempts,
            Attempts {
                result: Outcome::Ok,
                attempts: 3,
                waited: secs(2),
                gave_up: None,
            }
        );
        assert_eq!(record.numbers, [1, 2, 3]);
        assert_eq!(record.sleeps, [secs(1), secs(1)]);
        assert_eq!(record.jitter_draws, 0);
        let notice = |attempt| RetryNotice {
            attempt,
            max_attempts: 4,
            delay: secs(1),
            reason: "the server answered HTTP 429".to_owned(),
            from_server: true,
        };
        assert_eq!(record.notices, [notice(1), notice(2)]);
    }

    #[test]
    fn retry_after_is_not_capped_by_max_delay() {
        let record = run_script(
            &RetryPolicy::DEFAULT,
            None,
            0.5,
            &[Outcome::TooMany(Some(25)), Outcome::Ok],
        );
        assert_eq!(record.sleeps, [secs(25)]);
        assert_eq!(record.attempts.gave_up, None);
    }

    #[test]
    fn backoff_with_the_lowest_jitter_is_half_of_each_step() {
        let policy = RetryPolicy {
            max_attempts: 7,
            max_total_wait: secs(100),
            ..RetryPolicy::DEFAULT
        };
        let record = run_script(&policy, None, 0.0, &[Outcome::TooMany(None)]);
        // 1, 2, 4, 8, then the 10 s cap (16, 32 capped): half of each.
        assert_eq!(
            record.sleeps,
            [ms(500), secs(1), secs(2), secs(4), secs(5), secs(5)]
        );
        assert_eq!(record.jitter_draws, 6);
        assert!(record.notices.iter().all(|notice| !notice.from_server));
        assert_eq!(
            record.attempts,
            Attempts {
                result: Outcome::TooMany(None),
                attempts: 7,
                waited: ms(17_500),
                gave_up: Some(GaveUp::Attempts),
            }
        );
    }

    #[test]
    fn backoff_with_the_highest_jitter_is_nearly_each_step() {
        let policy = RetryPolicy {
            max_attempts: 6,
            max_total_wait: secs(100),
            ..RetryPolicy::DEFAULT
        };
        let record = run_script(&policy, None, 0.999, &[Outcome::TooMany(None)]);
        assert_eq!(
            record.sleeps,
            [
                ms(999) + Duration::from_micros(500),
                ms(1_999),
                ms(3_998),
                ms(7_996),
                ms(9_995)
            ]
        );
        assert_eq!(
            record
                .notices
                .iter()
                .map(|notice| notice.delay)
                .collect::<Vec<_>>(),
            record.sleeps
        );
    }

    #[test]
    fn always_failing_stops_at_max_attempts() {
        let record = run_script(&RetryPolicy::DEFAULT, None, 0.0, &[Outcome::TooMany(None)]);
        assert_eq!(record.numbers, [1, 2, 3, 4]);
        assert_eq!(record.sleeps, [ms(500), secs(1), secs(2)]);
        assert_eq!(
            record.attempts,
            Attempts {
                result: Outcome::TooMany(None),
                attempts: 4,
                waited: ms(3_500),
                gave_up: Some(GaveUp::Attempts),
            }
        );
        assert_eq!(
            record
                .notices
                .iter()
                .map(|notice| notice.attempt)
                .collect::<Vec<_>>(),
            [1, 2, 3]
        );
    }

    #[test]
    fn retry_after_beyond_the_budget_gives_up_at_once() {
        let record = run_script(
            &RetryPolicy::DEFAULT,
            None,
            0.5,
            &[Outcome::TooMany(Some(60))],
        );
        assert_eq!(
            record.attempts,
            Attempts {
                result: Outcome::TooMany(Some(60)),
                attempts: 1,
                waited: Duration::ZERO,
                gave_up: Some(GaveUp::TotalWait {
                    needed: secs(60),
                    left: secs(30),
                }),
            }
        );
        assert_eq!(record.sleeps, []);
        assert_eq!(record.notices, []);
    }

    #[test]
    fn retry_after_beyond_what_is_left_of_the_budget_gives_up() {
        let record = run_script(
            &RetryPolicy::DEFAULT,
            None,
            0.5,
            &[Outcome::TooMany(Some(20))],
        );
        assert_eq!(record.sleeps, [secs(20)]);
        assert_eq!(
            record.attempts.gave_up,
            Some(GaveUp::TotalWait {
                needed: secs(20),
                left: secs(10),
            })
        );
        assert_eq!(record.attempts.attempts, 2);
    }

    #[test]
    fn backoff_is_clipped_to_the_budget_then_gives_up() {
        let policy = RetryPolicy {
            max_attempts: 10,
            max_total_wait: ms(2_500),
            ..RetryPolicy::DEFAULT
        };
        let record = run_script(&policy, None, 0.999, &[Outcome::TooMany(None)]);
        assert_eq!(
            record.sleeps,
            [
                ms(999) + Duration::from_micros(500),
                ms(1_500) + Duration::from_micros(500)
            ]
        );
        assert_eq!(
            record.attempts,
            Attempts {
                result: Outcome::TooMany(None),
                attempts: 3,
                waited: ms(2_500),
                gave_up: Some(GaveUp::TotalWait {
                    needed: ms(3_998),
                    left: Duration::ZERO,
                }),
            }
        );
    }

    #[test]
    fn deadline_in_the_past_means_no_wait() {
        let past = Instant::now();
        let backoff = run_script(
            &RetryPolicy::DEFAULT,
            Some(past),
            0.0,
            &[Outcome::TooMany(None)],
        );
        assert_eq!(backoff.sleeps, []);
        assert_eq!(backoff.notices, []);
        assert_eq!(backoff.attempts.attempts, 1);
        assert_eq!(
            backoff.attempts.gave_up,
            Some(GaveUp::Deadline {
                needed: ms(500),
                left: Duration::ZERO,
            })
        );

        let hinted = run_script(
            &RetryPolicy::DEFAULT,
            Some(past),
            0.0,
            &[Outcome::TooMany(Some(1))],
        );
        assert_eq!(hinted.sleeps, []);
        assert_eq!(
            hinted.attempts.gave_up,
            Some(GaveUp::Deadline {
                needed: secs(1),
                left: Duration::ZERO,
            })
        );
    }

    #[test]
    fn retry_after_beyond_the_deadline_gives_up_at_once() {
        let policy = RetryPolicy {
            max_total_wait: Duration::MAX,
            ..RetryPolicy::DEFAULT
        };
        let deadline = Instant::now() + secs(3600);
        let record = run_script(
            &policy,
            Some(deadline),
            0.0,
            &[Outcome::TooMany(Some(7200))],
        );
        assert_eq!(record.sleeps, []);
        let Some(GaveUp::Deadline { needed, left }) = record.attempts.gave_up else {
            panic!("expected a deadline, got {:?}", record.attempts.gave_up);
        };
        assert_eq!(needed, secs(7200));
        assert!(left <= secs(3600) && left > secs(3500), "{left:?}");
    }

    #[test]
    fn backoff_is_clipped_to_the_deadline() {
        let deadline = Instant::now() + ms(700);
        let record = run_script(
            &RetryPolicy::DEFAULT,
            Some(deadline),
            0.999,
            &[Outcome::TooMany(None), Outcome::Ok],
        );
        assert_eq!(record.sleeps.len(), 1);
        assert!(
            record.sleeps[0] <= ms(700) && record.sleeps[0] > ms(600),
            "{:?}",
            record.sleeps
        );
        assert_eq!(record.attempts.result, Outcome::Ok);
    }

    #[test]
    fn a_final_failure_returns_after_one_attempt() {
        let record = run_script(&RetryPolicy::DEFAULT, None, 0.5, &[Outcome::Refused]);
        assert_eq!(
            record.attempts,
            Attempts {
                result: Outcome::Refused,
                attempts: 1,
                waited: Duration::ZERO,
                gave_up: None,
            }
        );
        assert_eq!(record.sleeps, []);
    }

    #[test]
    fn a_final_failure_after_retries_stops_retrying() {
        let record = run_script(
            &RetryPolicy::DEFAULT,
            None,
            0.0,
            &[Outcome::TooMany(None), Outcome::Refused, Outcome::Ok],
        );
        assert_eq!(record.numbers, [1, 2]);
        assert_eq!(record.attempts.result, Outcome::Refused);
        assert_eq!(record.attempts.gave_up, None);
        assert_eq!(record.attempts.waited, ms(500));
    }

    #[test]
    fn no_retries_and_zero_attempts_mean_one_attempt() {
        for policy in [
            RetryPolicy::NONE,
            RetryPolicy {
                max_attempts: 0,
                ..RetryPolicy::DEFAULT
            },
        ] {
            let record = run_script(&policy, None, 0.5, &[Outcome::TooMany(Some(1))]);
            assert_eq!(record.numbers, [1]);
            assert_eq!(record.attempts.gave_up, Some(GaveUp::Attempts));
            assert_eq!(record.sleeps, []);
        }
    }

    #[test]
    fn zero_waits_are_allowed_with_no_budget() {
        let policy = RetryPolicy {
            max_attempts: 3,
            max_total_wait: Duration::ZERO,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        };
        let record = run_script(&policy, None, 0.5, &[Outcome::TooMany(None)]);
        assert_eq!(record.sleeps, [Duration::ZERO, Duration::ZERO]);
        assert_eq!(record.attempts.gave_up, Some(GaveUp::Attempts));

        let hinted = run_script(
            &policy,
            None,
            0.5,
            &[Outcome::TooMany(Some(0)), Outcome::Ok],
        );
        assert_eq!(hinted.sleeps, [Duration::ZERO]);
        assert_eq!(hinted.attempts.result, Outcome::Ok);
    }

    #[test]
    fn many_attempts_and_huge_durations_do_not_overflow() {
        let policy = RetryPolicy {
            max_attempts: 100,
            max_total_wait: Duration::MAX,
            ..RetryPolicy::DEFAULT
        };
        let record = run_script(&policy, None, 0.0, &[Outcome::TooMany(None)]);
        // 0.5 + 1 + 2 + 4, then 95 waits of half the 10 s cap.
        assert_eq!(record.attempts.waited, ms(482_500));
        assert_eq!(record.attempts.attempts, 100);

        let huge = RetryPolicy {
            max_attempts: u32::MAX,
            max_total_wait: Duration::MAX,
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
        };
        assert_eq!(huge.backoff(1), Duration::MAX);
        assert_eq!(huge.backoff(40), Duration::MAX);
        assert_eq!(huge.backoff(u32::MAX), Duration::MAX);
        assert_eq!(equal_jitter(Duration::MAX, 1.0), Duration::MAX);
        let record = run_script(&huge, None, 0.999, &[Outcome::TooMany(None), Outcome::Ok]);
        assert_eq!(record.attempts.attempts, 2);
        let record = run_script(
            &huge,
            None,
            0.0,
            &[
                Outcome::TooMany(Some(u64::MAX)),
                Outcome::TooMany(Some(u64::MAX)),
                Outcome::Ok,
            ],
        );
        assert_eq!(record.attempts.waited, secs(u64::MAX));
        assert_eq!(
            record.attempts.gave_up,
            Some(GaveUp::TotalWait {
                needed: secs(u64::MAX),
                left: Duration::MAX - secs(u64::MAX),
            })
        );
    }

    #[test]
    fn jitter_out_of_range_is_clamped() {
        assert_eq!(equal_jitter(secs(2), f64::NAN), secs(1));
        assert_eq!(equal_jitter(secs(2), -1.0), secs(1));
        assert_eq!(equal_jitter(secs(2), 2.0), secs(2));
        assert_eq!(equal_jitter(secs(2), f64::INFINITY), secs(2));
        assert_eq!(equal_jitter(secs(2), 0.25), ms(1_250));
        assert_eq!(
            equal_jitter(Duration::from_nanos(3), 0.0),
            Duration::from_nanos(1)
        );
    }

    #[test]
    fn random_unit_is_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(draws.iter().all(|draw| (0.0..1.0).contains(draw)));
        assert!(draws.iter().any(|draw| *draw < 0.5));
        assert!(draws.iter().any(|draw| *draw >= 0.5));
    }

    fn unavailable(status: u16, retry_after_seconds: Option<u64>) -> CallError {
        CallError::Connector(Error::ServerUnavailable(crate::types::ServerUnavailable {
            status,
            retry_after_seconds,
            error: None,
        }))
    }

    #[test]
    fn classifies_component_errors() {
        assert_eq!(
            classify_call_error(&unavailable(429, Some(3))),
            Some(Retryable {
                reason: "the server answered HTTP 429".to_owned(),
                retry_after: Some(secs(3)),
            })
        );
        assert_eq!(
            classify_call_error(&unavailable(503, None)),
            Some(Retryable {
                reason: "the server answered HTTP 503".to_owned(),
                retry_after: None,
            })
        );
        let transport = |error| CallError::Connector(Error::Transport(error));
        assert_eq!(
            classify_call_error(&transport(TransportError::Timeout)).map(|r| r.retry_after),
            Some(None)
        );
        assert!(
            classify_call_error(&transport(TransportError::ConnectionFailed("reset".into())))
                .is_some()
        );
        for final_error in [
            TransportError::Denied("evil.example".into()),
            TransportError::Tls("bad certificate".into()),
            TransportError::InvalidRequest("bad header".into()),
            TransportError::ResponseTooLarge(1024),
            TransportError::Other("?".into()),
        ] {
            assert_eq!(classify_call_error(&transport(final_error)), None);
        }
        let gave_up = CallError::GaveUp {
            attempts: 4,
            waited: secs(3),
            reason: GaveUp::Attempts,
            last: Box::new(unavailable(503, None)),
        };
        assert_eq!(classify_call_error(&gave_up), None);
    }

    #[test]
    fn call_retries_and_folds_a_give_up_into_the_error() {
        // Retry-After 0: the real sleep waits nothing.
        let mut notices = Vec::new();
        let mut sent = 0;
        let result = call(
            &RetryPolicy::DEFAULT,
            None,
            &mut |notice| notices.push(notice.clone()),
            || {
                sent += 1;
                if sent < 3 {
                    Err(unavailable(429, Some(0)))
                } else {
                    Ok(sent)
                }
            },
        );
        assert_eq!(result.ok(), Some(3));
        assert_eq!(notices.len(), 2);

        let result: Result<(), _> = call(&RetryPolicy::DEFAULT, None, &mut |_| {}, || {
            Err(unavailable(503, Some(0)))
        });
        let Err(CallError::GaveUp {
            attempts,
            waited,
            reason,
            last,
        }) = result
        else {
            panic!("expected a give-up, got {result:?}");
        };
        assert_eq!(
            (attempts, waited, reason),
            (4, Duration::ZERO, GaveUp::Attempts)
        );
        assert!(matches!(
            *last,
            CallError::Connector(Error::ServerUnavailable(crate::types::ServerUnavailable {
                status: 503,
                ..
            }))
        ));

        let mut sent = 0;
        let result: Result<(), _> = call(&RetryPolicy::DEFAULT, None, &mut |_| {}, || {
            sent += 1;
            Err(CallError::Connector(Error::Transport(TransportError::Tls(
                "x".into(),
            ))))
        });
        assert_eq!(sent, 1);
        assert!(matches!(
            result,
            Err(CallError::Connector(Error::Transport(TransportError::Tls(
                _
            ))))
        ));
    }

    #[test]
    fn summaries() {
        let gave_up = Attempts {
            result: (),
            attempts: 4,
            waited: ms(7_200),
            gave_up: Some(GaveUp::Attempts),
        };
        assert_eq!(gave_up.to_string(), "gave up after 4 attempts over 7.2 s");
        let budget = Attempts {
            result: (),
            attempts: 1,
            waited: Duration::ZERO,
            gave_up: Some(GaveUp::TotalWait {
                needed: secs(60),
                left: secs(30),
            }),
        };
        assert_eq!(
            budget.to_string(),
            "gave up after 1 attempt over 0.0 s: the next wait of 60.0 s is more than the \
             30.0 s left of the retry budget"
        );
        let finished = Attempts {
            result: (),
            attempts: 2,
            waited: secs(1),
            gave_up: None,
        };
        assert_eq!(finished.to_string(), "2 attempts over 1.0 s");
        let notice = RetryNotice {
            attempt: 1,
            max_attempts: 4,
            delay: secs(2),
            reason: "the server answered HTTP 429".to_owned(),
            from_server: true,
        };
        assert_eq!(
            notice.to_string(),
            "attempt 1 of 4 failed (the server answered HTTP 429); retrying in 2.0 s, as the \
             server asked"
        );
    }
}
