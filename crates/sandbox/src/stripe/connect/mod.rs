//! Stripe Connect, the part a marketplace paying its sellers uses: Express accounts onboarded on
//! a hosted form, destination charges that pay the seller and keep an application fee, and the
//! refunds, reversals and fee refunds that take the money back.
//!
//! Map:
//! - `accounts`: `POST /v1/accounts`, `GET /v1/accounts/{id}`, login links; onboarding and
//!   disabling, each sending `account.updated`;
//! - `links`: Account Links, five minutes and single-use, and what visiting one leads to;
//! - `transfers`: destination charges, checked at session creation and at payment, and the
//!   transfer and application fee a successful charge creates;
//! - `reversals`: transfer reversals and fee refunds, with a refund's flags or afterwards;
//! - `hosted`: the onboarding form and the Express dashboard (`/connect/…`);
//! - `control` and `sim`: the controls, over HTTP under `/__sim` and on [`StripeSim`];
//!   `ledger`: the public views;
//! - `store` and `objects`: the records and their JSON.
//!
//! Why one endpoint: Stripe sends a platform's own events and its connected accounts' events
//! (`account.updated` here) to two different kinds of endpoint, an account endpoint and a
//! Connect endpoint, each with its own signing secret. The simulator sends both kinds to the one
//! configured webhook URL, signed with the same secrets; Connect events are told apart by their
//! top-level `"account": "acct_…"`. In production the Connect endpoint is pointed at the same
//! URL as the account endpoint, and its signing secret is added to the service's list of
//! secrets, so the service verifies either.
//!
//! What is not played: Standard and Custom accounts, direct charges and separate transfers
//! (`POST /v1/transfers`), `on_behalf_of`, `transfer_data[amount]`, payouts and the connected
//! account's own balance, and requests made as a connected account (`Stripe-Account`).
//!
//! [`StripeSim`]: super::StripeSim

pub(crate) mod accounts;
mod control;
pub(crate) mod hosted;
mod ledger;
pub(crate) mod links;
mod objects;
pub(crate) mod reversals;
mod sim;
pub(crate) mod store;
mod transfers;

pub(crate) use control::routes as control_routes;
pub(crate) use transfers::destination_charge;
