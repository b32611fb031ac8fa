//! Sellers' connected accounts at Stripe (Express accounts): made once per seller, onboarded
//! through Stripe's hosted pages, and opened from Stripe's Express dashboard; and a refunded sale's
//! transfer and application fee taken back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use market_core::provider::{ConnectAccounts, HostedLink, ProviderError};
use stripe::StripeRequest;
use stripe_connect::account::{
    CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesCardPayments,
    CreateAccountCapabilitiesTransfers, CreateAccountType,
};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::application_fee::RetrieveApplicationFee;
use stripe_connect::application_fee_refund::CreateIdApplicationFeeRefund;
use stripe_connect::login_link::CreateAccountLoginLink;
use stripe_connect::transfer::RetrieveTransfer;
use stripe_connect::transfer_reversal::CreateIdTransferReversal;
use uuid::Uuid;

use super::StripeGateway;
use super::calls::keyed;

impl ConnectAccounts for StripeGateway {
    /// Keyed by the seller: a retry (after a lost answer, from any instance) within Stripe's 24-hour
    /// window gets the same account. The account's metadata names the seller, for people reading
    /// Stripe's dashboard.
    async fn create_account(
        &self,
        seller: Uuid,
        email: Option<&str>,
    ) -> Result<String, ProviderError> {
        let mut capabilities = CreateAccountCapabilities::new();
        let mut card_payments = CreateAccountCapabilitiesCardPayments::new();
        card_payments.requested = Some(true);
        capabilities.card_payments = Some(card_payments);
        let mut transfers = CreateAccountCapabilitiesTransfers::new();
        transfers.requested = Some(true);
        capabilities.transfers = Some(transfers);
        let mut request = CreateAccount::new()
            .type_(CreateAccountType::Express)
            .capabilities(capabilities)
            .metadata(HashMap::from([(
                "seller_id".to_owned(),
                seller.to_string(),
            )]));
        if let Some(email) = email {
            request = request.email(email);
        }
        let account = keyed("create_account", format!("account:{seller}"), |strategy| {
            request
                .customize()
                .request_strategy(strategy)
                .send(&self.client)
        })
        .await?;
        Ok(account.id.to_string())
    }

    /// Not keyed: each call is a new single-use link, which is what a seller asking again wants.
    async fn onboarding_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<HostedLink, ProviderError> {
        let request = CreateAccountLink::new(account, CreateAccountLinkType::AccountOnboarding)
            .refresh_url(refresh_url)
            .return_url(return_url);
        let link =
            super::calls::unkeyed("create_account_link", || request.send(&self.client)).await?;
        Ok(HostedLink {
            url: link.url,
            expires_at: DateTime::<Utc>::from_timestamp(link.expires_at, 0),
        })
    }

    /// Reads the transfer and the fee first: what is already back (the operator's refund asked for
    /// both) costs two reads and no write. The rest is taken back in full, under keys named after
    /// the transfer and the fee, so two instances (or a retry) take back once.
    async fn take_back(
        &self,
        transfer: &str,
        application_fee: Option<&str>,
    ) -> Result<(), ProviderError> {
        let read = RetrieveTransfer::new(transfer);
        let moved = super::calls::idempotent_retries(|| read.send(&self.client))
            .await
            .map_err(|e| super::calls::failure(&e))?;
        if moved.amount_reversed < moved.amount {
            let reverse = CreateIdTransferReversal::new(transfer);
            keyed(
                "reverse_transfer",
                format!("reversal:{transfer}"),
                |strategy| {
                    reverse
                        .customize()
                        .request_strategy(strategy)
                        .send(&self.client)
                },
            )
            .await?;
        }
        if let Some(fee) = application_fee {
            let read = RetrieveApplicationFee::new(fee);
            let kept = super::calls::idempotent_retries(|| read.send(&self.client))
                .await
                .map_err(|e| super::calls::failure(&e))?;
            if kept.amount_refunded < kept.amount {
                let refund = CreateIdApplicationFeeRefund::new(fee);
                keyed(
                    "refund_application_fee",
                    format!("fee_refund:{fee}"),
                    |strategy| {
                        refund
                            .customize()
                            .request_strategy(strategy)
                            .send(&self.client)
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn login_link(&self, account: &str) -> Result<HostedLink, ProviderError> {
        let request = CreateAccountLoginLink::new(account);
        let link =
            super::calls::unkeyed("create_login_link", || request.send(&self.client)).await?;
        Ok(HostedLink {
            url: link.url,
            expires_at: None,
        })
    }
}
