//! Rate limits (GCRA from the `governor` crate): per token, by role, for
//! authenticated calls; per peer address for failed authentications.
//!
//! Each role has its own quota (requests per second and a burst); each token
//! has its own bucket within its role's limiter. A quota of 0 per second
//! turns the limit off for that role (benchmarks, trusted automation).
//!
//! A peer address that fails to authenticate more often than its quota is
//! blocked for a while: every failed call from it gets 429 with
//! `Retry-After` and none is audited (a valid token still passes).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::auth::Role;

/// A role's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second; 0 = unlimited.
    pub per_second: u32,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

/// Quotas by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    pub viewer: RateLimit,
    pub operator: RateLimit,
    pub admin: RateLimit,
}

impl Default for RateLimits {
    fn default() -> Self {
        let limit = RateLimit {
            per_second: 50,
            burst: 100,
        };
        Self {
            viewer: limit,
            operator: limit,
            admin: limit,
        }
    }
}

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// The headers a limited response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again (or, when refused, until the
    /// next request may pass).
    pub reset_secs: u64,
}

pub enum Decision {
    Unlimited,
    Allowed(Allowance),
    Refused(Allowance),
}

pub struct TokenLimiter {
    by_role: [(Role, Option<Limiter>, u32); 3],
    clock: DefaultClock,
}

fn limiter(limit: RateLimit) -> Option<Limiter> {
    let per_second = NonZeroU32::new(limit.per_second)?;
    let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::per_second(per_second).allow_burst(burst);
    Some(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
}

impl TokenLimiter {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            by_role: [
                (Role::Viewer, limiter(limits.viewer), limits.viewer.burst),
                (
                    Role::Operator,
                    limiter(limits.operator),
                    limits.operator.burst,
                ),
                (Role::Admin, limiter(limits.admin), limits.admin.burst),
            ],
            clock: DefaultClock::default(),
        }
    }

    /// Count one request of `token_id`, whose role is `role`.
    pub fn check(&self, role: Role, token_id: &str) -> Decision {
        let Some((_, Some(limiter), burst)) = self.by_role.iter().find(|(r, ..)| *r == role) else {
            return Decision::Unlimited;
        };
        let limit = (*burst).max(1);
        match limiter.check_key(&token_id.to_string()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let period = state.quota().replenish_interval();
                let reset = period * (limit.saturating_sub(remaining));
                Decision::Allowed(Allowance {
                    limit,
                    remaining,
                    reset_secs: reset.as_secs_f64().ceil() as u64,
                })
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Decision::Refused(Allowance {
                    limit,
                    remaining: 0,
                    reset_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
        }
    }
}

type PeerLimiter = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// Peers blocked at once before the oldest blocks are forgotten.
const MAX_BLOCKED: usize = 100_000;

/// Failed authentications per peer address.
pub struct FailedAuthLimiter {
    /// None: failed authentications are not limited.
    limiter: Option<PeerLimiter>,
    clock: DefaultClock,
    /// Peers over their quota, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl FailedAuthLimiter {
    /// `per_minute` failures per peer (bursts of as many); 0 = no limit.
    pub fn new(per_minute: u32) -> Self {
        let limiter = NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Self {
            limiter,
            clock: DefaultClock::default(),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds `peer` must still wait, if it is blocked.
    pub fn blocked(&self, peer: IpAddr) -> Option<u64> {
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        let until = *blocked.get(&peer)?;
        let now = Instant::now();
        if until <= now {
            blocked.remove(&peer);
            return None;
        }
        Some((until - now).as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Count a failure of `peer`; the seconds it is now blocked for, when
    /// that was one failure too many.
    pub fn failed(&self, peer: IpAddr) -> Option<u64> {
        let limiter = self.limiter.as_ref()?;
        let not_until = limiter.check_key(&peer).err()?;
        let wait = not_until
            .wait_time_from(self.clock.now())
            .max(Duration::from_secs(1));
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        if blocked.len() >= MAX_BLOCKED {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < MAX_BLOCKED {
            blocked.insert(peer, Instant::now() + wait);
        }
        Some(wait.as_secs_f64().ceil() as u64)
    }

    /// Forget the counts of peers that have not failed lately (call now and
    /// then: the memory kept stays bounded by recent peers).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_peers_are_blocked_and_others_are_not() {
        let limiter = FailedAuthLimiter::new(3);
        let (bad, good): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for _ in 0..3 {
            assert_eq!(limiter.failed(bad), None, "within the quota");
        }
        assert_eq!(limiter.blocked(bad), None);
        let wait = limiter.failed(bad).expect("one too many");
        assert!(wait >= 1);
        assert!(limiter.blocked(bad).is_some());
        assert_eq!(limiter.blocked(good), None);
        limiter.forget_idle();
        assert!(limiter.blocked(bad).is_some(), "still blocked");
        let off = FailedAuthLimiter::new(0);
        for _ in 0..100 {
            assert_eq!(off.failed(bad), None);
        }
    }

    #[test]
    fn burst_then_refusal_per_token_and_unlimited_roles() {
        let limits = RateLimits {
            viewer: RateLimit {
                per_second: 1,
                burst: 3,
            },
            operator: RateLimit {
                per_second: 0,
                burst: 0,
            },
            ..RateLimits::default()
        };
        let limiter = TokenLimiter::new(limits);
        let mut remaining = Vec::new();
        for _ in 0..3 {
            match limiter.check(Role::Viewer, "a") {
                Decision::Allowed(allowance) => remaining.push(allowance.remaining),
                _ => panic!("within the burst"),
            }
        }
        assert_eq!(remaining, [2, 1, 0]);
        let Decision::Refused(refused) = limiter.check(Role::Viewer, "a") else {
            panic!("over the burst");
        };
        assert!(refused.reset_secs >= 1);
        assert!(matches!(
            limiter.check(Role::Viewer, "b"),
            Decision::Allowed(_)
        ));
        for _ in 0..1000 {
            assert!(matches!(
                limiter.check(Role::Operator, "c"),
                Decision::Unlimited
            ));
        }
    }
}
