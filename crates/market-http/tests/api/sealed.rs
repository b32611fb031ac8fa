//! Reading install tokens back in tests: the table holds them sealed, so a test opens them with
//! the instance's data key ([`DATA_KEY`]) or finds a row by a token's fingerprint.
#![allow(dead_code, reason = "each test binary uses a different part")]

use market_core::envelope::{DataKeys, Envelope};
use market_core::{ListingId, keys};

use crate::helpers::{DATA_KEY, TestApp};

impl TestApp {
    /// The token strings of the `install_token` rows `condition` picks, in row order, opened with
    /// the instance's data key (the table holds no plain token).
    pub async fn tokens_where(&self, condition: &str) -> Vec<String> {
        let rows = self.token_states_where(condition).await;
        rows.into_iter().map(|(token, _)| token).collect()
    }

    /// [`tokens_where`](Self::tokens_where) with each token's state.
    pub async fn token_states_where(&self, condition: &str) -> Vec<(String, String)> {
        let envelope = self.envelope().await;
        let rows: Vec<(ListingId, String, Vec<u8>, String)> = sqlx::query_as(&format!(
            "select listing_id, token_key_id, token_sealed, state::text from install_token
             where {condition} order by install_token_id"
        ))
        .fetch_all(self.db.pool())
        .await
        .unwrap();
        rows.into_iter()
            .map(|(listing, key_id, sealed, state)| {
                let token = keys::open_token(&envelope, listing, key_id, sealed).unwrap();
                (token.expose().to_owned(), state)
            })
            .collect()
    }

    /// The fingerprint the row of `token` carries, to find it by.
    pub async fn fingerprint(&self, token: &str) -> Vec<u8> {
        let envelope = self.envelope().await;
        keys::fingerprint(&envelope, &master_api::TokenValue::new(token)).to_vec()
    }

    async fn envelope(&self) -> Envelope {
        keys::open(self.db.pool(), DataKeys::parse(DATA_KEY).unwrap())
            .await
            .unwrap()
    }
}
