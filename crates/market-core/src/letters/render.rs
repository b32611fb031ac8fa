//! What each message says, rendered when it is sent: from the purchase as it is then (the receipt
//! of a purchase refunded before its message left says so, and shows no token).
//!
//! A message carries one secret at most, the buyer's own token, and only while it is live.

use std::fmt::Write as _;

use sqlx::PgPool;

use super::row::{Mail, MailKind};
use crate::envelope::Envelope;
use crate::postman::{Letter, Postman, escape_html};
use crate::purchases::{self, Receipt};
use crate::{Error, Money, Result};

/// Links sent to one address in [`LINK_WINDOW_MINUTES`] beyond which more are not sent (asking is
/// free and unauthenticated: this is what keeps the portal from mail-bombing an address).
const LINKS_PER_WINDOW: i64 = 3;
const LINK_WINDOW_MINUTES: i32 = 15;

/// What a message comes to when it is due.
#[derive(Debug)]
pub enum Rendered {
    Letter(Letter),
    /// Not to be sent, and why (a portal link for an address that has bought nothing, or one too
    /// many links to one address).
    Skip(&'static str),
}

/// The message `mail` as it goes out now. `Error::NotFound` when what it reports is gone.
pub async fn render(
    db: &PgPool,
    envelope: &Envelope,
    postman: &Postman,
    mail: &Mail,
) -> Result<Rendered> {
    if mail.kind == MailKind::PortalLink {
        return portal_link(db, postman, mail).await;
    }
    let purchase_id = mail.purchase_id.ok_or(Error::NotFound("purchase"))?;
    let purchase = purchases::by_id(db, purchase_id)
        .await?
        .ok_or(Error::NotFound("purchase"))?;
    if let Some(base) = purchase.upgrade_of {
        return upgrade(db, envelope, postman, mail, &purchase, base).await;
    }
    let receipt = purchases::receipt_of(db, envelope, &purchase).await?;
    let what = format!("{} — {}", receipt.canonical, receipt.tier_name);
    let (subject, lines) = match mail.kind {
        MailKind::Receipt => (
            format!("Your install token for {what}"),
            receipt_lines(&receipt),
        ),
        MailKind::AccessRestored => (
            format!("Your access to {what} is restored"),
            restored_lines(&receipt),
        ),
        MailKind::TokenRotated => (
            format!("Your new install token for {what}"),
            rotated_lines(&receipt),
        ),
        MailKind::AccessEnded
        | MailKind::PortalLink
        | MailKind::Upgraded
        | MailKind::UpgradeReversed
        | MailKind::WebhookDisabled => (
            format!("Your access to {what} has ended"),
            ended_lines(&receipt),
        ),
    };
    Ok(Rendered::Letter(signed(
        postman, mail, subject, lines, &receipt,
    )))
}

/// An upgrade's message, about the token of the purchase it upgrades (`upgrade`'s own receipt
/// holds none). It does not repeat the token: the buyer has it, and it did not change.
async fn upgrade(
    db: &PgPool,
    envelope: &Envelope,
    postman: &Postman,
    mail: &Mail,
    upgrade: &purchases::Purchase,
    base: crate::PurchaseId,
) -> Result<Rendered> {
    let base = purchases::by_id(db, base)
        .await?
        .ok_or(Error::NotFound("purchase"))?;
    let receipt = purchases::receipt_of(db, envelope, &base).await?;
    let (target, entitled) = sqlx::query_as::<_, (String, i64)>(
        "select t.name, purchase_entitlement($2) from tier t where t.tier_id = $1",
    )
    .bind(upgrade.tier_id)
    .bind(base.purchase_id)
    .fetch_one(db)
    .await?;
    let what = format!("{} — {target}", receipt.canonical);
    let (subject, line) = if mail.kind == MailKind::Upgraded {
        (
            format!("Your upgrade to {what} is active"),
            format!(
                "Your purchase of {} is upgraded to {target} ({} paid): the same install token now \
                 allows {} installs. Nothing to change on your side.",
                receipt.canonical,
                price(&upgrade.price),
                base.max_installs
            ),
        )
    } else {
        let how = match upgrade.status.as_str() {
            "refunded" => "refunded",
            "disputed" | "dispute_lost" => "disputed",
            _ => "revoked",
        };
        let line = if base.status.may_hold_a_token() || base.status.is_owed_a_token() {
            format!(
                "Your upgrade of {} to {target} was {how}: your install token goes back to \
                 {entitled} installs, or the installs already made if they are more. The token \
                 itself keeps working.",
                receipt.canonical
            )
        } else {
            format!(
                "Your upgrade of {} to {target} was {how}. The purchase it upgraded is {} and holds \
                 no working token.",
                receipt.canonical, base.status
            )
        };
        (format!("Your upgrade to {what} was reversed"), line)
    };
    Ok(Rendered::Letter(signed(
        postman,
        mail,
        subject,
        vec![Line::Text(line)],
        &receipt,
    )))
}

/// `lines`, then what every message about a purchase ends with.
fn signed(
    postman: &Postman,
    mail: &Mail,
    subject: String,
    lines: Vec<Line>,
    receipt: &Receipt,
) -> Letter {
    let mut all = lines;
    all.push(Line::Text(format!(
        "All your purchases, their tokens and usage: {}/#portal",
        postman.public_url()
    )));
    all.push(Line::Text(format!(
        "Purchase {} · {} · {}",
        receipt.purchase_id.0,
        price(&receipt.price),
        postman.public_url()
    )));
    all.push(Line::Text(
        "You receive this message because this address bought from us; it is sent once per \
         change to your purchase."
            .to_owned(),
    ));
    letter(postman, mail, subject, &all)
}

/// The sign-in link, unless the address has bought nothing here or has had enough links lately.
async fn portal_link(db: &PgPool, postman: &Postman, mail: &Mail) -> Result<Rendered> {
    let link = mail.portal_link_id.ok_or(Error::NotFound("portal link"))?;
    let (bought, recent) = sqlx::query_as::<_, (bool, i64)>(
        "select exists (select 1 from purchase
                        where lower(email) = lower($1)
                          and status not in ('pending', 'expired', 'failed')),
                (select count(*) from mail_message
                 where kind = 'portal_link' and lower(recipient) = lower($1) and state = 'sent'
                   and sent_at > now() - make_interval(mins => $2))",
    )
    .bind(&mail.recipient)
    .bind(LINK_WINDOW_MINUTES)
    .fetch_one(db)
    .await?;
    if !bought {
        return Ok(Rendered::Skip("no purchase was made with this address"));
    }
    if recent >= LINKS_PER_WINDOW {
        return Ok(Rendered::Skip(
            "too many sign-in links sent to this address lately",
        ));
    }
    let Some(url) = postman.portal_link_url(link) else {
        return Ok(Rendered::Skip("this instance cannot sign portal links"));
    };
    let lines = vec![
        Line::Text("Here is your link to see your purchases, their tokens and usage:".to_owned()),
        Line::Token(url),
        Line::Text(format!(
            "It works once, for {} minutes. If you did not ask for it, ignore this message: \
             nothing happens without the link.",
            crate::receipt::PORTAL_LINK_MINUTES
        )),
    ];
    Ok(Rendered::Letter(letter(
        postman,
        mail,
        "Your sign-in link".to_owned(),
        &lines,
    )))
}

pub(super) fn letter(postman: &Postman, mail: &Mail, subject: String, lines: &[Line]) -> Letter {
    Letter {
        message_id: postman.message_id(mail.mail_id),
        to: mail.recipient.clone(),
        subject,
        text: text(lines),
        html: html(lines),
    }
}

/// A paragraph of a message, rendered as text and as HTML.
pub(super) enum Line {
    Text(String),
    /// The token, set apart so it can be copied.
    Token(String),
    Steps(Vec<String>),
}

fn receipt_lines(receipt: &Receipt) -> Vec<Line> {
    let mut lines = vec![Line::Text(format!(
        "Thank you for buying {} — {} ({}).",
        receipt.canonical,
        receipt.tier_name,
        price(&receipt.price)
    ))];
    lines.extend(token_lines(receipt));
    lines
}

fn restored_lines(receipt: &Receipt) -> Vec<Line> {
    let mut lines = vec![Line::Text(format!(
        "The dispute over your purchase of {} — {} was decided in your favour: your access is \
         restored.",
        receipt.canonical, receipt.tier_name
    ))];
    lines.extend(token_lines(receipt));
    lines
}

fn rotated_lines(receipt: &Receipt) -> Vec<Line> {
    let mut lines = vec![Line::Text(format!(
        "Your install access token for {} — {} was replaced, as asked: the previous token no \
         longer works. The new one carries the installs already used.",
        receipt.canonical, receipt.tier_name
    ))];
    lines.extend(token_lines(receipt));
    lines
}

fn ended_lines(receipt: &Receipt) -> Vec<Line> {
    let why = match receipt.status.as_str() {
        "refunded" => "the payment was refunded",
        "disputed" | "dispute_lost" => "the payment is disputed",
        _ => "access was revoked",
    };
    vec![Line::Text(format!(
        "Your install access token for {} — {} no longer works: {why}. Snippets already installed \
         stay where they are.",
        receipt.canonical, receipt.tier_name
    ))]
}

/// The token and how to install with it, or why there is none to show.
fn token_lines(receipt: &Receipt) -> Vec<Line> {
    match receipt.token.as_ref().and_then(|t| t.value.as_ref()) {
        Some(token) => vec![
            Line::Text("Your install access token:".to_owned()),
            Line::Token(token.expose().to_owned()),
            Line::Text("How to install:".to_owned()),
            Line::Steps(receipt.install_steps()),
            Line::Text(
                "Keep the token to yourself: whoever has it can use your installs.".to_owned(),
            ),
        ],
        None if receipt.status.may_hold_a_token() || receipt.status.is_owed_a_token() => {
            vec![Line::Text(
                "Your token is being issued; your receipt shows it as soon as it is ready."
                    .to_owned(),
            )]
        }
        None => vec![Line::Text(format!(
            "This purchase holds no working token any more (it is {}).",
            receipt.status
        ))],
    }
}

fn text(lines: &[Line]) -> String {
    let mut out = String::new();
    for line in lines {
        match line {
            Line::Text(t) => out.push_str(t),
            Line::Token(t) => {
                let _ = write!(out, "    {t}");
            }
            Line::Steps(steps) => {
                for (i, step) in steps.iter().enumerate() {
                    let _ = writeln!(out, "{}. {step}", i + 1);
                }
                out.pop();
            }
        }
        out.push_str("\n\n");
    }
    out
}

fn html(lines: &[Line]) -> String {
    let mut out = String::from("<!doctype html><html><body style=\"font-family:sans-serif\">");
    for line in lines {
        match line {
            Line::Text(t) => {
                let _ = write!(out, "<p>{}</p>", escape_html(t));
            }
            Line::Token(t) => {
                let _ = write!(
                    out,
                    "<p><code style=\"font-size:1.1em;user-select:all\">{}</code></p>",
                    escape_html(t)
                );
            }
            Line::Steps(steps) => {
                out.push_str("<ol>");
                for step in steps {
                    let _ = write!(out, "<li>{}</li>", escape_html(step));
                }
                out.push_str("</ol>");
            }
        }
    }
    out.push_str("</body></html>");
    out
}

/// `$19.00`-like text: minor units shown in major units, except for Stripe's zero-decimal
/// currencies.
fn price(money: &Money) -> String {
    const ZERO_DECIMAL: [&str; 16] = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    let code = money.currency.as_str().to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&money.currency.as_str()) {
        format!("{} {code}", money.amount)
    } else {
        format!(
            "{}.{:02} {code}",
            money.amount / 100,
            (money.amount % 100).abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn money(amount: i64, currency: &str) -> Money {
        Money {
            amount,
            currency: Currency::parse(currency).unwrap(),
        }
    }

    #[test]
    fn prices_read_in_major_units_except_zero_decimal_currencies() {
        assert_eq!(price(&money(1900, "usd")), "19.00 USD");
        assert_eq!(price(&money(5, "eur")), "0.05 EUR");
        assert_eq!(price(&money(1900, "jpy")), "1900 JPY");
    }

    #[test]
    fn html_bodies_escape_what_they_quote() {
        let body = html(&[Line::Text("<script>&\"".to_owned())]);
        assert!(body.contains("&lt;script&gt;&amp;&quot;"));
        assert!(!body.contains("<script>"));
    }
}
