//! `market sellers suspend|reactivate` and `market sellers keys list|issue|revoke`: what the admin
//! API does to a seller, from a shell with the database (`invite` and `list` are `operator.rs`').
//! Printed in the admin API's shapes, audited as `admin:cli:$USER`.

use market_core::seller_keys::{self, LastKey};
use market_core::sellers;
use market_http::wire::seller_keys::{IssuedKeyBody, SellerKeyBody};
use market_http::wire::sellers::SellerBody;
use uuid::Uuid;

use super::conventions::{connect, operator, print_json};
use crate::cli::SellerKeysCommand;
use crate::config::DbArgs;

/// Suspends a seller and prints it.
pub async fn suspend(seller: Uuid, db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    let seller = sellers::suspend(&db, seller, &operator()).await?;
    print_json(&SellerBody::from(seller))
}

/// Reactivates a seller and prints it.
pub async fn reactivate(seller: Uuid, db: &DbArgs) -> anyhow::Result<()> {
    let db = connect(db).await?;
    let seller = sellers::reactivate(&db, seller, &operator()).await?;
    print_json(&SellerBody::from(seller))
}

pub async fn keys(command: SellerKeysCommand) -> anyhow::Result<()> {
    match command {
        SellerKeysCommand::List { seller, db } => {
            let db = connect(&db).await?;
            if sellers::by_id(&db, seller).await?.is_none() {
                anyhow::bail!("no seller {seller}");
            }
            let keys = seller_keys::list(&db, seller).await?;
            print_json(
                &keys
                    .into_iter()
                    .map(SellerKeyBody::from)
                    .collect::<Vec<_>>(),
            )
        }
        SellerKeysCommand::Issue { seller, db } => {
            let db = connect(&db).await?;
            let (record, key) = seller_keys::issue(&db, seller, &operator()).await?;
            print_json(&IssuedKeyBody::of(record, &key))
        }
        SellerKeysCommand::Revoke { seller, key, db } => {
            let db = connect(&db).await?;
            let revoked =
                seller_keys::revoke(&db, seller, &key, LastKey::MayGo, &operator()).await?;
            print_json(&SellerKeyBody::from(revoked))
        }
    }
}
