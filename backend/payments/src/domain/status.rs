use contract::payments::PaymentStatus::{self, *};

/// What a caller asks of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Cancel,
    Refund,
}

/// The state machine of DESIGN.md:
/// `requires_confirmation -> processing -> succeeded | failed`, or
/// `requires_confirmation -> canceled`. Settled payments never move again;
/// only a succeeded one takes refunds, which change its amounts, not its status.
pub fn transition(from: PaymentStatus, to: PaymentStatus) -> bool {
    matches!(
        (from, to),
        (RequiresConfirmation, Processing)
            | (RequiresConfirmation, Canceled)
            | (Processing, Succeeded)
            | (Processing, Failed)
    )
}

/// Whether `action` may be taken on a payment in `status`.
pub fn allowed(action: Action, status: PaymentStatus) -> bool {
    match action {
        Action::Confirm => transition(status, Processing),
        Action::Cancel => transition(status, Canceled),
        Action::Refund => status == Succeeded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_designed_transitions_exist() {
        let mut edges = Vec::new();
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                if transition(from, to) {
                    edges.push((from, to));
                }
            }
        }
        assert_eq!(
            edges,
            vec![
                (RequiresConfirmation, Processing),
                (RequiresConfirmation, Canceled),
                (Processing, Succeeded),
                (Processing, Failed),
            ]
        );
        for terminal in [Succeeded, Failed, Canceled] {
            assert!(PaymentStatus::ALL.iter().all(|to| !transition(terminal, *to)));
        }
    }

    #[test]
    fn actions_follow_the_machine() {
        assert!(allowed(Action::Confirm, RequiresConfirmation));
        assert!(allowed(Action::Cancel, RequiresConfirmation));
        assert!(allowed(Action::Refund, Succeeded));
        for status in [Processing, Succeeded, Failed, Canceled] {
            assert!(!allowed(Action::Confirm, status));
            assert!(!allowed(Action::Cancel, status));
        }
        for status in [RequiresConfirmation, Processing, Failed, Canceled] {
            assert!(!allowed(Action::Refund, status));
        }
    }
}
