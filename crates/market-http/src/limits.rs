//! Per-client rate limits on the public endpoints, so that one client's flood cannot spend everyone
//! else's share of the service, nor of Stripe's account-wide rate limit (each checkout opens a
//! Checkout Session; a success page may read one).
//!
//! Each class of endpoint has its own limit, kept per client IP with the `governor` crate (GCRA: a
//! burst of `requests`, refilled evenly over `period`). The client IP is the connection's peer, or,
//! when the peer is a configured trusted proxy, the nearest address in `Forwarded` /
//! `X-Forwarded-For` that is not one: a client cannot pick its own key by sending the header. The
//! webhook route is not limited per IP (Stripe sends from a few addresses); its body size and
//! signature check bound it. The route table puts one middleware per class in front of the public
//! endpoints; a refused request gets `429 rate_limited` with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

/// The public endpoints, by what a request there costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// `POST /v1/checkout`: a purchase row and a Stripe Checkout Session.
    Checkout,
    /// `GET /v1/checkout/sessions/{id}`: may read the session from Stripe.
    SuccessPage,
    /// `GET /v1/purchases/{id}`: a receipt-key check.
    PurchaseRead,
    /// `GET /v1/listings…`: answered from memory.
    Catalog,
    /// `POST /v1/portal/links` and `/sessions`: a sign-in link mailed, or one redeemed (guessing
    /// is what this limit slows). The email a link goes to has its own limit, kept by the sender.
    Portal,
}

/// `requests` in a burst, refilled evenly over `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub requests: NonZeroU32,
    pub period: Duration,
}

impl Limit {
    fn quota(self) -> Quota {
        let per_request = self.period / self.requests.get();
        Quota::with_period(per_request.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.requests))
            .allow_burst(self.requests)
    }
}

/// The limit of each class; `None` leaves a class unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub checkout: Option<Limit>,
    pub success_page: Option<Limit>,
    pub purchase_read: Option<Limit>,
    pub catalog: Option<Limit>,
    pub portal: Option<Limit>,
}

impl RateLimits {
    /// Per client IP, sized for buyers in browsers: a buyer starts a few checkouts, a success page
    /// polls every second or two while the payment lands, a storefront page reads the catalog.
    pub const DEFAULT: Self = Self {
        checkout: Some(per_minute(30)),
        success_page: Some(per_minute(120)),
        purchase_read: Some(per_minute(120)),
        catalog: Some(per_minute(1200)),
        portal: Some(per_minute(10)),
    };

    /// No limit anywhere (benchmarks, and tests of other things).
    pub const NONE: Self = Self {
        checkout: None,
        success_page: None,
        purchase_read: None,
        catalog: None,
        portal: None,
    };
}

const fn per_minute(requests: u32) -> Limit {
    Limit {
        requests: match NonZeroU32::new(requests) {
            Some(n) => n,
            None => NonZeroU32::MIN,
        },
        period: Duration::from_secs(60),
    }
}

/// The limiters of one instance (each instance counts its own clients).
pub struct Limiters {
    checkout: Option<DefaultKeyedRateLimiter<IpAddr>>,
    success_page: Option<DefaultKeyedRateLimiter<IpAddr>>,
    purchase_read: Option<DefaultKeyedRateLimiter<IpAddr>>,
    catalog: Option<DefaultKeyedRateLimiter<IpAddr>>,
    portal: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted_proxies: Vec<IpNet>,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("trusted_proxies", &self.trusted_proxies)
            .finish_non_exhaustive()
    }
}

impl Limiters {
    pub fn new(limits: &RateLimits, trusted_proxies: Vec<IpNet>) -> Self {
        let keyed = |limit: Option<Limit>| limit.map(|l| RateLimiter::keyed(l.quota()));
        Self {
            checkout: keyed(limits.checkout),
            success_page: keyed(limits.success_page),
            purchase_read: keyed(limits.purchase_read),
            catalog: keyed(limits.catalog),
            portal: keyed(limits.portal),
            trusted_proxies,
        }
    }

    /// `Ok` when `client` may make one more request of `class` now; else how long to wait.
    pub fn check(&self, class: Class, client: IpAddr) -> Result<(), Duration> {
        let limiter = match class {
            Class::Checkout => &self.checkout,
            Class::SuccessPage => &self.success_page,
            Class::PurchaseRead => &self.purchase_read,
            Class::Catalog => &self.catalog,
            Class::Portal => &self.portal,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets clients whose limits are full again (called periodically: the state is per IP).
    pub fn forget_idle(&self) {
        for limiter in [
            &self.checkout,
            &self.success_page,
            &self.purchase_read,
            &self.catalog,
            &self.portal,
        ]
        .into_iter()
        .flatten()
        {
            limiter.retain_recent();
        }
    }

    /// The client's IP: the peer, or, behind a trusted proxy, the nearest forwarded address that
    /// is not a trusted proxy itself. `forwarded` is asked for only behind a trusted proxy, so a
    /// request from anyone else costs no header parsing.
    pub fn client_ip(&self, peer: IpAddr, forwarded: impl FnOnce() -> Vec<IpAddr>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let forwarded = forwarded();
        forwarded
            .iter()
            .rev()
            .find(|ip| !self.is_trusted(**ip))
            .or(forwarded.first())
            .copied()
            .unwrap_or(peer)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// The addresses a request was forwarded for, first (the original client) to last: from
/// `Forwarded` (RFC 7239) if present, else `X-Forwarded-For`. Unparseable entries are skipped.
pub fn forwarded_for(req: &ServiceRequest) -> Vec<IpAddr> {
    let headers = req.headers();
    if let Some(value) = headers.get("forwarded").and_then(|v| v.to_str().ok()) {
        return value
            .split(',')
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.eq_ignore_ascii_case("for")
                        .then(|| parse_node(value))?
                })
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(parse_node)
        .collect()
}

/// `192.0.2.1`, `"192.0.2.1:4711"`, `"[2001:db8::1]:4711"` or `2001:db8::1` → the IP.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checkout => "checkout",
            Self::SuccessPage => "success_page",
            Self::PurchaseRead => "purchase_read",
            Self::Catalog => "catalog",
            Self::Portal => "portal",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_the_wait_and_other_clients_are_not_affected() {
        let limits = RateLimits {
            checkout: Some(Limit {
                requests: NonZeroU32::new(3).unwrap(),
                period: Duration::from_secs(60),
            }),
            ..RateLimits::NONE
        };
        let limiters = Limiters::new(&limits, Vec::new());
        for _ in 0..3 {
            assert!(limiters.check(Class::Checkout, ip("192.0.2.1")).is_ok());
        }
        let wait = limiters
            .check(Class::Checkout, ip("192.0.2.1"))
            .unwrap_err();
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limiters.check(Class::Checkout, ip("192.0.2.2")).is_ok());
        assert!(
            limiters.check(Class::Catalog, ip("192.0.2.1")).is_ok(),
            "unlimited class"
        );
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: IpNet = "10.0.0.0/8".parse().unwrap();
        let limiters = Limiters::new(&RateLimits::NONE, vec![proxy]);
        let forwarded = [ip("198.51.100.7"), ip("10.1.2.3")];

        assert_eq!(
            limiters.client_ip(ip("10.9.9.9"), || forwarded.to_vec()),
            ip("198.51.100.7")
        );
        assert_eq!(
            limiters.client_ip(ip("203.0.113.5"), || forwarded.to_vec()),
            ip("203.0.113.5"),
            "an untrusted peer cannot choose its key"
        );
        assert_eq!(
            limiters.client_ip(ip("10.9.9.9"), || [].to_vec()),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn nodes_parse_in_the_shapes_forwarded_headers_use() {
        assert_eq!(parse_node("192.0.2.60"), Some(ip("192.0.2.60")));
        assert_eq!(parse_node("\"192.0.2.60:4711\""), Some(ip("192.0.2.60")));
        assert_eq!(
            parse_node("\"[2001:db8::1]:4711\""),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(parse_node("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_node("unknown"), None);
    }
}
