//! The model: a purchase's statuses and Stripe facts, the steps of a case and their strategy.

use std::time::Duration;

use market_core::PurchaseId;
use market_core::payments::{DisputeStage, Fact, SessionFacts, SessionPayment};
use proptest::prelude::*;
use sandbox::xano::{Fault, TokenState};

/// A purchase's status in the model. `Paid` stands for paid or fulfilled: owed one token.
/// Used as the event too: the status it asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Pending,
    Paid,
    Refunded,
    /// A chargeback is open: no token while the bank decides.
    Disputed,
    /// The seller won the dispute: owed one token again.
    Reinstated,
    DisputeLost,
    Expired,
    Failed,
}

impl Status {
    /// The issues' state machine: monotonic, terminal statuses absorb everything, an open dispute
    /// ends won (access back) or lost (final).
    pub(crate) fn after(self, event: Status) -> Self {
        use Status::{DisputeLost, Disputed, Expired, Failed, Paid, Pending, Refunded, Reinstated};
        match (self, event) {
            (Pending, Paid | Expired | Failed)
            | (Pending | Paid | Disputed | Reinstated, Refunded)
            | (Pending | Paid, Disputed)
            | (Disputed, Reinstated)
            | (Pending | Paid | Disputed, DisputeLost) => event,
            (unchanged, _) => unchanged,
        }
    }

    /// Owed exactly one live token.
    pub(crate) fn is_owed(self) -> bool {
        matches!(self, Self::Paid | Self::Reinstated)
    }

    pub(crate) fn matches(self, db: &str) -> bool {
        match self {
            Self::Paid => db == "paid" || db == "fulfilled",
            Self::DisputeLost => db == "dispute_lost",
            other => format!("{other:?}").to_lowercase() == db,
        }
    }
}

/// A Stripe fact about one purchase.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stripe {
    Completed {
        paid: bool,
    },
    AsyncSucceeded,
    AsyncFailed,
    Expired,
    Refund,
    PartialRefund,
    /// A dispute's event at this stage (created, updated or closed, by its status).
    Dispute(DisputeStage),
}

pub(crate) const PAID: Stripe = Stripe::Completed { paid: true };

impl Stripe {
    pub(crate) fn event_type(self) -> &'static str {
        match self {
            Self::Completed { .. } => "checkout.session.completed",
            Self::AsyncSucceeded => "checkout.session.async_payment_succeeded",
            Self::AsyncFailed => "checkout.session.async_payment_failed",
            Self::Expired => "checkout.session.expired",
            Self::Refund | Self::PartialRefund => "charge.refunded",
            Self::Dispute(DisputeStage::Inquiry | DisputeStage::Opened) => "charge.dispute.created",
            Self::Dispute(_) => "charge.dispute.closed",
        }
    }
}

/// The model of one purchase: its status and what Stripe has told us about its payment.
#[derive(Clone, Debug)]
pub(crate) struct Purchase {
    pub(crate) id: PurchaseId,
    pub(crate) session: String,
    pub(crate) status: Status,
    /// A Checkout Session fact has tied the PaymentIntent to the purchase.
    pub(crate) linked: bool,
    /// Refund and dispute tombstones recorded on the PaymentIntent.
    pub(crate) refunded: bool,
    pub(crate) disputed: bool,
    /// How the dispute closed (`Won` or `Lost`), the first close recorded.
    pub(crate) dispute_outcome: Option<DisputeStage>,
}

impl Purchase {
    /// Session facts link the payment and lose to a recorded refund or dispute; a refund or
    /// dispute closes a linked purchase, and otherwise waits as a tombstone.
    pub(crate) fn apply(&mut self, fact: Stripe) {
        let event = match fact {
            Stripe::Completed { paid } => paid.then_some(Status::Paid),
            Stripe::AsyncSucceeded => Some(Status::Paid),
            Stripe::AsyncFailed => Some(Status::Failed),
            Stripe::Expired => Some(Status::Expired),
            Stripe::PartialRefund => return,
            Stripe::Refund => {
                self.refunded = true;
                if self.linked {
                    self.status = self.status.after(Status::Refunded);
                }
                return;
            }
            Stripe::Dispute(stage) => {
                self.disputed |= matches!(
                    stage,
                    DisputeStage::Opened | DisputeStage::Won | DisputeStage::Lost
                );
                if matches!(stage, DisputeStage::Won | DisputeStage::Lost) {
                    self.dispute_outcome = self.dispute_outcome.or(Some(stage));
                }
                if let Some(event) = self.dispute_event().filter(|_| self.linked) {
                    self.status = self.status.after(event);
                }
                return;
            }
        };
        self.linked = true;
        // A refund, or a dispute open or lost, recorded first wins; a won dispute lets the
        // payment stand.
        let tombstone = self
            .refunded
            .then_some(Status::Refunded)
            .or(self.dispute_event().filter(|e| *e != Status::Reinstated));
        if let Some(event) = tombstone.or(event) {
            self.status = self.status.after(event);
        }
    }

    /// What the dispute facts recorded so far ask of the purchase.
    fn dispute_event(&self) -> Option<Status> {
        match self.dispute_outcome {
            Some(DisputeStage::Won) => Some(Status::Reinstated),
            Some(_) => Some(Status::DisputeLost),
            None => self.disputed.then_some(Status::Disputed),
        }
    }

    pub(crate) fn fact(&self, fact: Stripe) -> Fact {
        let payment_intent = format!("pi_{}", self.id.0.simple());
        let session = |payment| SessionFacts {
            payer_email: None,
            purchase: self.id,
            session_id: self.session.clone(),
            payment_intent: Some(payment_intent.clone()),
            payment,
            charge: None,
        };
        let (paid, unpaid) = (SessionPayment::Paid, SessionPayment::Unpaid);
        match fact {
            Stripe::Completed { paid: true } => Fact::CheckoutCompleted(session(paid)),
            Stripe::Completed { paid: false } => Fact::CheckoutCompleted(session(unpaid)),
            Stripe::AsyncSucceeded => Fact::AsyncPaymentSucceeded(session(paid)),
            Stripe::AsyncFailed => Fact::AsyncPaymentFailed(session(unpaid)),
            Stripe::Expired => Fact::CheckoutExpired(session(unpaid)),
            Stripe::Refund | Stripe::PartialRefund => Fact::ChargeRefunded {
                fully_refunded: matches!(fact, Stripe::Refund),
                amount_refunded: if matches!(fact, Stripe::Refund) {
                    1900
                } else {
                    500
                },
                payment_intent,
            },
            Stripe::Dispute(stage) => Fact::Dispute {
                payment_intent,
                stage,
            },
        }
    }
}

/// One step. `Deliver(p, ..)` is about purchase `p % n` of the case's `n` purchases and
/// `Redeliver(e)` repeats delivered event `e % m`; both are no-ops while there are none.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Create,
    /// A webhook delivery with a fresh event id.
    Deliver(usize, Stripe),
    /// An earlier delivery again, same event id: must have no effect.
    Redeliver(usize),
    /// The buyer's success page: "completed, paid" without an inbox entry.
    SuccessPage(usize),
    /// A paid webhook, the success page and a full refund at the same time.
    PaidRacesRefund(usize),
    /// This instance runs every due job.
    Drain,
    /// An instance claims jobs and dies before running them: their leases must run out.
    ClaimAndDie {
        jobs: i64,
        lease_ms: u64,
    },
    /// A second instance runs jobs in the background, concurrently with the steps that follow...
    InstanceUp,
    /// ...until it dies wherever it is (its task is aborted).
    InstanceDies,
    Xano(Fault),
    XanoHealed,
    Credential(TokenState),
    /// Xano refuses (`true`) or allows again the case's snippet alone, while the credential works.
    SnippetForbidden(bool),
    Reconcile,
}

/// The tier a case sells (a pool target of 0 sends every sale through the mint fallback).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TierShape {
    pub(crate) max_installs: i64,
    pub(crate) low_water: i32,
    pub(crate) target: i32,
}

pub(crate) fn case() -> impl Strategy<Value = (TierShape, Vec<Step>)> {
    let shape = (1..=10i64, 0..=2i32, 0..=2i32).prop_map(|(max_installs, low_water, more)| {
        let target = low_water + more;
        TierShape {
            max_installs,
            low_water,
            target,
        }
    });
    let fact = prop_oneof![
        4 => Just(PAID),
        1 => Just(Stripe::Completed { paid: false }),
        1 => Just(Stripe::AsyncSucceeded),
        1 => Just(Stripe::AsyncFailed),
        1 => Just(Stripe::Expired),
        2 => Just(Stripe::Refund),
        1 => Just(Stripe::PartialRefund),
        1 => Just(Stripe::Dispute(DisputeStage::Opened)),
        1 => prop_oneof![
            Just(DisputeStage::Inquiry),
            Just(DisputeStage::Won),
            Just(DisputeStage::Lost),
        ]
        .prop_map(Stripe::Dispute),
    ];
    let fault = prop_oneof![
        (1..=5u32).prop_map(|count| Fault::RateLimited {
            count,
            retry_after: None,
            only: None
        }),
        (1..=3u32).prop_map(|count| Fault::ServerError {
            count,
            status: 503,
            only: None
        }),
        (1..=2u32).prop_map(|count| Fault::CommitThenFail { count, stall: None }),
        Just(Fault::CommitThenDrop { count: 1 }),
        (1..=2u32).prop_map(|count| Fault::DropConnection { count, only: None }),
        (1..=3u64).prop_map(|ms| Fault::Latency {
            min: Duration::ZERO,
            max: Duration::from_millis(ms),
            only: None
        }),
    ];
    let p = 0..4usize;
    let step = prop_oneof![
        3 => Just(Step::Create),
        10 => (p.clone(), fact).prop_map(|(p, fact)| Step::Deliver(p, fact)),
        2 => (0..16usize).prop_map(Step::Redeliver),
        2 => p.clone().prop_map(Step::SuccessPage),
        1 => p.prop_map(Step::PaidRacesRefund),
        3 => Just(Step::Drain),
        1 => (1..=3i64, 5..=40u64).prop_map(|(jobs, lease_ms)| Step::ClaimAndDie { jobs, lease_ms }),
        1 => Just(Step::InstanceUp),
        1 => Just(Step::InstanceDies),
        2 => fault.prop_map(Step::Xano),
        1 => Just(Step::XanoHealed),
        1 => prop_oneof![Just(TokenState::Expired), Just(TokenState::Forbidden)].prop_map(Step::Credential),
        1 => Just(Step::Credential(TokenState::Valid)),
        1 => any::<bool>().prop_map(Step::SnippetForbidden),
        1 => Just(Step::Reconcile),
    ];
    (shape, proptest::collection::vec(step, 1..=30))
}
