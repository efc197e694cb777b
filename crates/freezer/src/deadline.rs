//! A time budget shared by the steps of one operation.

use std::time::{Duration, Instant};

/// When an operation must give up, and the budget it was given (for messages).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    end: Instant,
    pub(crate) budget: Duration,
}

impl Deadline {
    pub(crate) fn after(budget: Duration) -> Self {
        Deadline {
            end: Instant::now() + budget,
            budget,
        }
    }

    pub(crate) fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    pub(crate) fn expired(&self) -> bool {
        Instant::now() >= self.end
    }
}
