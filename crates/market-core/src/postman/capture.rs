//! Mail kept in memory: what a sandbox run "sends", shown at its sandbox page.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::letter::Letter;

/// The newest messages kept; older ones are dropped (a sandbox left running must not grow).
const KEEP: usize = 200;

/// A message as the capture kept it.
#[derive(Clone, Debug)]
pub struct CapturedMail {
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub at: DateTime<Utc>,
}

/// The in-process outbox of a sandbox run. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    kept: Arc<Mutex<VecDeque<CapturedMail>>>,
}

impl Capture {
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn keep(&self, from: &str, letter: &Letter) {
        let mail = CapturedMail {
            message_id: letter.message_id.clone(),
            from: from.to_owned(),
            to: letter.to.clone(),
            subject: letter.subject.clone(),
            text: letter.text.clone(),
            html: letter.html.clone(),
            at: Utc::now(),
        };
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A retry of the same message replaces it, as a mail client shows one message per id.
        kept.retain(|m| m.message_id != mail.message_id);
        if kept.len() == KEEP {
            kept.pop_front();
        }
        kept.push_back(mail);
    }

    /// The kept messages, newest first.
    pub fn messages(&self) -> Vec<CapturedMail> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.iter().rev().cloned().collect()
    }
}
