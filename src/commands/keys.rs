//! `market keys`: make a data key, and seal everything again under the first one (a key roll).

use anyhow::Context as _;
use market_core::envelope::{DataKeys, KeyId};
use market_core::keys;
use serde::Serialize;

use super::conventions::{connect_sealed, print_json};
use crate::config::DbArgs;

/// Prints a new `MARKET_DATA_KEY` entry.
pub fn generate(id: &str) -> anyhow::Result<()> {
    let id = KeyId::parse(id).context("a key id is 1-32 of letters, digits, `_` and `-`")?;
    println!("{}", DataKeys::generate_entry(&id));
    Ok(())
}

/// What `market keys rotate` did, as it prints it.
#[derive(Serialize)]
struct RotationBody {
    /// The key everything is sealed under now.
    sealed_under: String,
    tokens_resealed: u64,
    plain_tokens_sealed: u64,
    lookup_key_resealed: bool,
    seller_credentials_resealed: u64,
}

pub async fn rotate(db: &DbArgs) -> anyhow::Result<()> {
    let (pool, envelope) = connect_sealed(db).await?;
    let done = keys::rotate(&pool, &envelope).await?;
    print_json(&RotationBody {
        sealed_under: envelope.keys().sealing_id().to_string(),
        tokens_resealed: done.tokens,
        plain_tokens_sealed: done.plain,
        lookup_key_resealed: done.lookup_key,
        seller_credentials_resealed: done.seller_credentials,
    })
}
