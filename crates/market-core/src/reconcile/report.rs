//! What a reconciliation did ([`Report`]), and the database's tokens as it read them.

use crate::{ListingId, PurchaseId, TokenId};

/// What one reconciliation of one listing did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub listing_id: Option<ListingId>,
    pub canonical: String,
    /// Tokens Xano listed.
    pub at_xano: u64,
    pub adopted: u64,
    pub removed: u64,
    pub foreign: u64,
    pub missing: u64,
    /// Purchases whose token went missing, queued for a new one.
    pub reissued: u64,
    /// Deletions we had asked for and Xano has done.
    pub confirmed_deleted: u64,
    /// Tokens we had recorded as deleted that Xano still lists: deleted again.
    pub redeleted: u64,
    /// Tokens whose `current_installs` changed.
    pub refreshed: u64,
    /// Assigned tokens whose limit at Xano is not ours (an update that reached Xano after its
    /// client gave up, say): their purchase's `apply_upgrade` queued, which writes the entitlement.
    pub limits_drifted: u64,
    /// Assigned tokens whose installs count at Xano fell below the one read there before (an
    /// update of ours applied late, over installs made since): the count kept, and written back
    /// by the purchase's `apply_upgrade`.
    pub counts_set_back: u64,
    /// Tokens marked `missing` that Xano lists again: given back to their buyer, or deleted when
    /// the buyer has a replacement (or no longer needs one).
    pub reappeared: u64,
    /// Tokens this pass would have marked `missing` but held back: too many of the listing's live
    /// tokens at once to trust one answer of Xano's (a truncated list). The next pass decides.
    pub held_back: u64,
}

impl Report {
    /// Whether the run changed anything.
    pub fn changed(&self) -> bool {
        self.adopted
            + self.removed
            + self.foreign
            + self.missing
            + self.reissued
            + self.confirmed_deleted
            + self.redeleted
            + self.refreshed
            + self.limits_drifted
            + self.counts_set_back
            + self.reappeared
            > 0
    }
}

/// A token as the database knew it when the pass began.
#[derive(sqlx::FromRow)]
pub(super) struct Known {
    pub(super) install_token_id: TokenId,
    /// The token's fingerprint (`keys`); a row from before tokens were sealed has only `token`.
    pub(super) token_fingerprint: Option<Vec<u8>>,
    pub(super) token: Option<String>,
    pub(super) state: String,
    pub(super) current_installs: i64,
    pub(super) max_installs: i64,
    pub(super) purchase_id: Option<PurchaseId>,
}

impl Known {
    /// Whether a pass may write this row, given what Xano lists for it (`None`: not listed). Its
    /// purchase is locked first then (`super::lock_purchases`).
    pub(super) fn may_be_written(&self, at_xano: Option<&master_api::InstallToken>) -> bool {
        match at_xano {
            Some(token) => {
                self.current_installs != token.current_installs
                    || (self.state == "assigned" && self.max_installs != token.max_installs)
                    || matches!(self.state.as_str(), "revoked" | "retired" | "missing")
            }
            None => matches!(
                self.state.as_str(),
                "revoking" | "retiring" | "available" | "assigned"
            ),
        }
    }
}
