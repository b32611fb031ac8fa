//! The ground truth the checker holds the service to: what Stripe said about a purchase, from the
//! events the Stripe simulator really sent (not the ones the driver forged).

use serde_json::Value;

use crate::events::StripeEvent;

/// What Stripe said about a purchase, from its real (not forged) events.
#[derive(Debug, Default, Clone, Copy)]
#[allow(clippy::struct_excessive_bools, reason = "five independent facts")]
pub struct Truth {
    pub paid: bool,
    pub refunded: bool,
    pub disputed: bool,
    pub expired: bool,
    pub failed: bool,
}

impl Truth {
    pub fn of(events: &[std::sync::Arc<StripeEvent>]) -> Self {
        let mut truth = Self::default();
        for event in events.iter().filter(|e| !e.forged) {
            let object = &event.body["data"]["object"];
            match event.type_.as_str() {
                "checkout.session.completed" => {
                    truth.paid |= object["payment_status"] == "paid";
                }
                "checkout.session.async_payment_succeeded" => truth.paid = true,
                "checkout.session.async_payment_failed" => truth.failed = true,
                "checkout.session.expired" => truth.expired = true,
                "charge.refunded" => truth.refunded |= object["refunded"] == Value::Bool(true),
                "charge.dispute.created" => truth.disputed = true,
                _ => {}
            }
        }
        truth
    }

    pub fn owed_a_token(self) -> bool {
        self.paid && !self.refunded && !self.disputed
    }

    /// The database statuses that agree with what Stripe said.
    pub fn statuses(self) -> &'static [&'static str] {
        match (self.paid, self.refunded, self.disputed) {
            (true, false, false) => &["fulfilled"],
            (true, true, false) => &["refunded"],
            (true, false, true) => &["disputed"],
            (true, true, true) => &["refunded", "disputed"],
            (false, ..) if self.failed => &["failed"],
            (false, ..) if self.expired => &["expired"],
            (false, ..) => &["pending"],
        }
    }
}
