//! `market serve`'s mail flags: where buyers' email goes, and from whom.

use clap::Args;
use secrecy::SecretString;

/// Buyers' email (receipts, access ended or restored). Production refuses to start without an SMTP
/// server and a sender unless `MARKET_MAIL_DISABLED=true` says mail is off on purpose; a sandbox or
/// development run without one keeps mail in-process and shows it at `/sandbox/mail`.
#[derive(Args, Clone, Debug)]
pub struct MailArgs {
    /// The SMTP server: `smtp://[user:password@]host[:port]` (STARTTLS when offered; add
    /// `?tls=required` to insist) or `smtps://…` (TLS from the first byte).
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SecretString>,

    /// The SMTP server's host, when `SMTP_URL` is not given (with `SMTP_PORT`, `SMTP_USERNAME`,
    /// `SMTP_PASSWORD`; STARTTLS is required then).
    #[arg(long, env = "SMTP_HOST")]
    pub smtp_host: Option<String>,

    #[arg(long, env = "SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,

    #[arg(long, env = "SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    #[arg(long, env = "SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<SecretString>,

    /// Who buyers' email is from: `Name <address>` or an address.
    #[arg(long, env = "MARKET_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Send no email at all (messages are recorded as `not_sent`).
    #[arg(long, env = "MARKET_MAIL_DISABLED", default_value_t = false)]
    pub mail_disabled: bool,
}
