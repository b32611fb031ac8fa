//! Parsing the values clap cannot type by itself: admin tokens, webhook secrets, rate limits and
//! trusted proxies. A refused value is named by its position, never by its content.

use std::time::Duration;

use ipnet::IpNet;
use market_http::limits::{Limit, RateLimits};
use market_http::state::AdminToken;
use secrecy::{ExposeSecret, SecretString};

/// Shortest admin token accepted: as hard to guess as a random UUID's 122 bits, and more.
const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Splits `name:token` entries; a bare token is named `admin`. Each entry is trimmed and must be a
/// whole one: an empty entry (a trailing comma, or `${NEW},${OLD}` with `OLD` unset) or a short
/// token stops start-up with the entry's position, never its value.
pub fn parse_admin_tokens(entries: &[SecretString]) -> Result<Vec<AdminToken>, String> {
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let at = index + 1;
            let raw = entry.expose_secret().trim();
            if raw.is_empty() {
                return Err(format!("MARKET_ADMIN_TOKENS: entry {at} is empty"));
            }
            let (name, token) = match raw.split_once(':') {
                Some((name, token)) => (name.trim(), token.trim()),
                None => ("admin", raw),
            };
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "MARKET_ADMIN_TOKENS: entry {at}: names are letters, digits, '-' and '_'"
                ));
            }
            if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                return Err(format!(
                    "MARKET_ADMIN_TOKENS: entry {at} (`{name}`): the token is shorter than \
                     {MIN_ADMIN_TOKEN_CHARS} characters"
                ));
            }
            Ok(AdminToken {
                name: name.to_owned(),
                token: SecretString::from(token.to_owned()),
            })
        })
        .collect()
}

/// Stripe's webhook signing secrets, each trimmed. An empty entry would make a signature computed
/// with the empty key verify (anyone can compute it), and a value that is not a `whsec_…` secret
/// is a paste of the wrong thing: both stop start-up with the entry's position, never its value.
pub fn parse_webhook_secrets(entries: &[SecretString]) -> Result<Vec<SecretString>, String> {
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let at = index + 1;
            let secret = entry.expose_secret().trim();
            if secret.is_empty() {
                return Err(format!("STRIPE_WEBHOOK_SECRETS: entry {at} is empty"));
            }
            if !secret.starts_with("whsec_") || secret.len() <= "whsec_".len() {
                return Err(format!(
                    "STRIPE_WEBHOOK_SECRETS: entry {at} is not a webhook signing secret (whsec_…)"
                ));
            }
            Ok(SecretString::from(secret.to_owned()))
        })
        .collect()
}

pub(super) fn parse_rate_limits(value: &str) -> Result<RateLimits, String> {
    if value.trim() == "none" {
        return Ok(RateLimits::NONE);
    }
    let mut limits = RateLimits::DEFAULT;
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (class, limit) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}`: expected CLASS=N/SECONDS"))?;
        let slot = match class.trim() {
            "checkout" => &mut limits.checkout,
            "success_page" => &mut limits.success_page,
            "purchase_read" => &mut limits.purchase_read,
            "catalog" => &mut limits.catalog,
            "portal" => &mut limits.portal,
            other => {
                return Err(format!(
                    "`{other}`: the classes are checkout, success_page, purchase_read, catalog \
                     and portal"
                ));
            }
        };
        let (requests, seconds) = parse_per_seconds(limit.trim())?;
        *slot = Some(Limit {
            requests: std::num::NonZeroU32::new(requests)
                .ok_or_else(|| "both numbers must be positive".to_owned())?,
            period: Duration::from_secs(seconds),
        });
    }
    Ok(limits)
}

pub(super) fn parse_proxy(value: &str) -> Result<IpNet, String> {
    let value = value.trim();
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{value}` is neither an IP address nor a CIDR block"))
}

/// `N/SECONDS`, both positive.
pub(super) fn parse_per_seconds(value: &str) -> Result<(u32, u64), String> {
    let (requests, seconds) = value
        .split_once('/')
        .ok_or_else(|| format!("`{value}`: expected N/SECONDS"))?;
    let requests: u32 = requests
        .parse()
        .map_err(|_| format!("`{requests}` is not a number"))?;
    let seconds: u64 = seconds
        .parse()
        .map_err(|_| format!("`{seconds}` is not a number"))?;
    if requests == 0 || seconds == 0 {
        return Err("both numbers must be positive".to_owned());
    }
    Ok((requests, seconds))
}

pub(super) fn parse_rate_limit(value: &str) -> Result<master_api::RateLimit, String> {
    match value {
        "none" => Ok(master_api::RateLimit::unlimited()),
        "free-plan" => Ok(master_api::RateLimit::XANO_FREE_PLAN),
        other => {
            let (requests, seconds) =
                parse_per_seconds(other).map_err(|e| format!("{e} (or none, free-plan)"))?;
            Ok(master_api::RateLimit::new(
                requests,
                Duration::from_secs(seconds),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "0123456789abcdef0123456789abcdef";

    fn secrets(entries: &[&str]) -> Vec<SecretString> {
        entries.iter().map(|e| SecretString::from(*e)).collect()
    }

    #[test]
    fn admin_tokens_carry_names_and_refuse_short_tokens() {
        let tokens =
            parse_admin_tokens(&secrets(&[&format!("alice:{LONG}"), &format!(" {LONG}X ")]))
                .unwrap();
        assert_eq!(tokens[0].name, "alice");
        assert_eq!(tokens[1].name, "admin");
        assert_eq!(tokens[1].token.expose_secret(), format!("{LONG}X"));
        assert!(parse_admin_tokens(&secrets(&["bob:short"])).is_err());
        assert!(parse_admin_tokens(&secrets(&[&format!("b o b:{LONG}")])).is_err());
    }

    /// Found from outside (security issue, finding 2): `${NEW},${OLD}` with `OLD` unset leaves an
    /// empty last entry. Before: a 16-character minimum, and an empty entry only failed by length.
    #[test]
    fn every_refused_admin_entry_is_named_by_position_never_by_value() {
        let short = "0123456789abcdef0123456789abcde"; // 31 characters: refused since the fix
        for (entries, position) in [
            (
                vec![format!("alice:{LONG}"), String::new()],
                "entry 2 is empty",
            ),
            (
                vec![format!("alice:{LONG}"), "   ".to_owned()],
                "entry 2 is empty",
            ),
            (vec![format!("alice:{short}")], "entry 1 (`alice`)"),
            (vec![format!(":{LONG}")], "entry 1: names"),
        ] {
            let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
            let error = parse_admin_tokens(&secrets(&entries)).unwrap_err();
            assert!(error.starts_with("MARKET_ADMIN_TOKENS: "), "{error}");
            assert!(error.contains(position), "{error}");
            assert!(!error.contains(short) && !error.contains(LONG), "{error}");
        }
    }

    /// Found from outside (security issue, finding 2): `STRIPE_WEBHOOK_SECRETS=whsec_…,` started in
    /// production with an empty second secret, and an event signed with the empty key was accepted.
    #[test]
    fn every_refused_webhook_secret_is_named_by_position_never_by_value() {
        let good = "whsec_0123456789abcdef";
        let parsed = parse_webhook_secrets(&secrets(&[good, &format!(" {good}2 ")])).unwrap();
        assert_eq!(parsed[1].expose_secret(), format!("{good}2"));
        for (entries, message) in [
            (vec![good, ""], "entry 2 is empty"),
            (vec![good, "  "], "entry 2 is empty"),
            (
                vec!["sk_test_0123456789", good],
                "entry 1 is not a webhook signing secret",
            ),
            (vec!["whsec_"], "entry 1 is not a webhook signing secret"),
        ] {
            let error = parse_webhook_secrets(&secrets(&entries)).unwrap_err();
            assert!(error.starts_with("STRIPE_WEBHOOK_SECRETS: "), "{error}");
            assert!(error.contains(message), "{error}");
            assert!(!error.contains("0123456789"), "{error}");
        }
    }

    #[test]
    fn client_rate_limits_parse_overrides_none_and_refuse_unknown_classes() {
        let limits = parse_rate_limits("checkout=5/10").unwrap();
        assert_eq!(limits.checkout.unwrap().requests.get(), 5);
        assert_eq!(limits.checkout.unwrap().period, Duration::from_secs(10));
        assert_eq!(
            limits.catalog,
            RateLimits::DEFAULT.catalog,
            "others keep their default"
        );
        assert_eq!(parse_rate_limits("none").unwrap(), RateLimits::NONE);
        for bad in [
            "checkout",
            "checkout=0/1",
            "checkout=5/0",
            "kitchen=5/1",
            "catalog=x/1",
        ] {
            assert!(parse_rate_limits(bad).is_err(), "{bad}");
        }
        assert!(parse_proxy("10.0.0.0/8").is_ok() && parse_proxy("192.0.2.1").is_ok());
        assert!(parse_proxy("proxy.example").is_err());
    }

    #[test]
    fn rate_limits_parse_presets_and_custom_values() {
        assert_eq!(
            parse_rate_limit("free-plan").unwrap(),
            master_api::RateLimit::XANO_FREE_PLAN
        );
        assert!(parse_rate_limit("5/10").is_ok());
        for bad in ["", "x", "0/1", "5/0", "5/x"] {
            assert!(parse_rate_limit(bad).is_err(), "{bad}");
        }
    }
}
