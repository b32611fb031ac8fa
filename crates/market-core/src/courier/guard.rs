//! The SSRF guard: which URLs a webhook may be sent to, and which addresses it may connect to.
//!
//! A seller types the URL, and this service's instances sit inside a network a stranger must not
//! reach: the database, the cloud's metadata service at 169.254.169.254 (credentials), the admin
//! port on loopback. So an address is refused unless it is publicly routable, and it is checked
//! twice, for two different reasons:
//! - when an endpoint is created or its URL changes ([`Guard::check_now`]), so the seller hears
//!   at once why `http://10.0.0.5/hook` cannot be used;
//! - at every delivery, on the addresses the connection will use (`GuardedResolver`, installed
//!   as the HTTP client's resolver). A name accepted yesterday can resolve to 127.0.0.1 today (DNS
//!   rebinding), and checking a name in one lookup and connecting after another is no check.
//!
//! Which addresses are refused is the business of `ranges`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

use super::ranges;

/// Which URLs and addresses webhooks may go to.
#[derive(Debug, Clone)]
pub struct Guard {
    allow_http: bool,
    /// Networks exempted from the address rules (loopback in tests, a sandbox's receiver).
    allowed: Vec<IpNet>,
}

/// Why a URL or an address was refused. Its text is meant for the seller: it names the address
/// and what kind it is, never more of the URL than its host (a query may hold the seller's token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The scheme is not `https` (or not `http` where that is allowed).
    #[error("{0} is not allowed; use https")]
    Scheme(String),
    /// `https://user:password@host/`: credentials belong in the signature, not the URL.
    #[error("a URL with a user name or password is not allowed")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    /// The URL names a refused address itself.
    #[error("{ip} is {kind}")]
    Address { ip: IpAddr, kind: &'static str },
    /// The URL's name resolves to a refused address (one is enough).
    #[error("{host} resolves to {ip}, {kind}")]
    Resolved {
        host: String,
        ip: IpAddr,
        kind: &'static str,
    },
    /// The name has no address (checked when an endpoint is saved; at delivery time a failed
    /// lookup is an ordinary connection error, worth retrying).
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

impl Refusal {
    /// Whether the URL itself is refused, so every later try would be refused the same way. A
    /// name that resolves to a refused address may be pointed elsewhere; that one is not permanent.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Resolved { .. } | Self::Unresolved { .. })
    }
}

impl Guard {
    /// Production: https only, every non-public address refused.
    pub fn strict() -> Self {
        Self {
            allow_http: false,
            allowed: Vec::new(),
        }
    }

    /// Tests and sandbox mode: also http, and the given networks exempted (e.g. 127.0.0.0/8,
    /// ::1/128).
    pub fn allowing(allow_http: bool, allowed: Vec<IpNet>) -> Self {
        Self {
            allow_http,
            allowed,
        }
    }

    /// Checks a URL's scheme and, when its host is an IP literal, the address. A name is left for
    /// [`check_now`](Self::check_now) or the resolver at send time.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(Refusal::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        match url.host() {
            None => Err(Refusal::NoHost),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => Ok(()),
        }
    }

    /// Whether one resolved address may be connected to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        match self.refused_kind(ip) {
            Some(kind) => Err(Refusal::Address { ip, kind }),
            None => Ok(()),
        }
    }

    /// [`check_url`](Self::check_url), then the name resolved now and every address checked:
    /// what the API calls when an endpoint is created or its URL changed.
    pub async fn check_now(&self, url: &Url) -> Result<(), Refusal> {
        self.check_url(url)?;
        let Some(Host::Domain(host)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let unresolved = |reason: String| Refusal::Unresolved {
            host: host.to_owned(),
            reason,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| unresolved(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(unresolved("no address".to_owned()));
        }
        self.check_resolved(host, addrs.iter().map(SocketAddr::ip))
    }

    /// Every address `host` resolved to, checked: one refused address refuses the name.
    fn check_resolved(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = IpAddr>,
    ) -> Result<(), Refusal> {
        for ip in addrs {
            if let Some(kind) = self.refused_kind(ip) {
                return Err(Refusal::Resolved {
                    host: host.to_owned(),
                    ip,
                    kind,
                });
            }
        }
        Ok(())
    }

    /// What kind of refused address `ip` is, or `None` when it may be connected to.
    fn refused_kind(&self, ip: IpAddr) -> Option<&'static str> {
        let exempt = |ip: IpAddr| self.allowed.iter().any(|net| net.contains(&ip));
        if exempt(ip) || ranges::embedded_v4(ip).is_some_and(|v4| exempt(IpAddr::V4(v4))) {
            return None;
        }
        ranges::refused_kind(ip)
    }
}

/// The HTTP client's resolver: resolves with the system's resolver (tokio) and refuses the name
/// when *any* address is refused, so the addresses the connection tries are the ones checked.
/// Hyper never asks a resolver about an IP-literal host: [`Guard::check_url`] covers those.
pub(super) struct GuardedResolver(pub(super) Arc<Guard>);

impl fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GuardedResolver").field(&self.0).finish()
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str();
            // Port 0: the client puts the URL's port (or the scheme's) in.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            guard.check_resolved(host, addrs.iter().map(SocketAddr::ip))?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn refusals_name_the_address_and_its_kind() {
        let guard = Guard::strict();
        let said = |text: &str| guard.check_ip(ip(text)).unwrap_err().to_string();
        assert_eq!(said("127.0.0.1"), "127.0.0.1 is a loopback address");
        assert_eq!(said("10.0.0.5"), "10.0.0.5 is a private address");
        assert_eq!(
            said("169.254.169.254"),
            "169.254.169.254 is the cloud metadata address"
        );
        assert_eq!(
            said("::ffff:192.168.0.1"),
            "::ffff:192.168.0.1 is a private address"
        );
        let resolved = guard
            .check_resolved("example.test", [ip("93.184.216.34"), ip("10.0.0.5")])
            .unwrap_err();
        assert_eq!(
            resolved.to_string(),
            "example.test resolves to 10.0.0.5, a private address"
        );
        assert!(!resolved.is_permanent());
    }

    /// The issue's list: each refused by the strict guard for its scheme, and, with http
    /// allowed, still refused for its address.
    #[test]
    fn the_issues_urls_are_refused_for_the_scheme_and_for_the_address() {
        let lenient = Guard::allowing(true, vec![]);
        for text in [
            "http://127.0.0.1",
            "http://[::1]",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.5:8080/hook",
            "http://192.168.1.20/",
            "http://[::ffff:127.0.0.1]/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            let url = url(text);
            assert_eq!(
                Guard::strict().check_url(&url),
                Err(Refusal::Scheme("http".to_owned())),
                "{text}"
            );
            let refusal = lenient.check_url(&url).unwrap_err();
            assert!(
                matches!(refusal, Refusal::Address { .. }),
                "{text}: {refusal}"
            );
            assert!(refusal.is_permanent());
            let https = text.replacen("http:", "https:", 1);
            assert!(
                Guard::strict()
                    .check_url(&Url::parse(&https).unwrap())
                    .is_err()
            );
        }
        assert_eq!(
            Guard::strict()
                .check_url(&url("http://example.com/"))
                .unwrap_err()
                .to_string(),
            "http is not allowed; use https"
        );
    }

    #[test]
    fn urls_with_credentials_or_other_schemes_are_refused_and_ports_are_fine() {
        let guard = Guard::strict();
        assert_eq!(
            guard.check_url(&url("https://user:pass@example.com/")),
            Err(Refusal::Credentials)
        );
        assert_eq!(
            guard.check_url(&url("https://user@example.com/")),
            Err(Refusal::Credentials)
        );
        assert!(matches!(
            guard.check_url(&url("ftp://example.com/")),
            Err(Refusal::Scheme(_))
        ));
        assert!(guard.check_url(&url("file:///etc/passwd")).is_err());
        assert_eq!(
            guard.check_url(&url("https://example.com:8443/hook?x=1")),
            Ok(())
        );
        assert_eq!(guard.check_url(&url("https://93.184.216.34:1/")), Ok(()));
    }

    #[test]
    fn allowed_networks_are_exempt_and_nothing_else_is() {
        let guard = Guard::allowing(
            true,
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        );
        assert_eq!(guard.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(guard.check_ip(ip("::1")), Ok(()));
        assert_eq!(guard.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
        assert!(guard.check_ip(ip("10.0.0.1")).is_err());
        assert!(guard.check_ip(ip("169.254.169.254")).is_err());
        assert_eq!(guard.check_url(&url("http://127.0.0.1:9999/")), Ok(()));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_now() {
        // `localhost` resolves to 127.0.0.1 and/or ::1 (/etc/hosts).
        let url = url("https://localhost:8443/hook");
        let refusal = Guard::strict().check_now(&url).await.unwrap_err();
        assert!(matches!(refusal, Refusal::Resolved { .. }), "{refusal}");
        assert!(
            refusal.to_string().starts_with("localhost resolves to "),
            "{refusal}"
        );
        assert!(
            refusal.to_string().ends_with(", a loopback address"),
            "{refusal}"
        );

        let exempt = Guard::allowing(
            false,
            vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        );
        assert_eq!(exempt.check_now(&url).await, Ok(()));
        assert!(
            Guard::strict()
                .check_now(&self::url("https://[::1]/"))
                .await
                .is_err()
        );
    }
}
