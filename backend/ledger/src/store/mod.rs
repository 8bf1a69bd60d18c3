//! Every query the ledger makes: accounts and statements, the payments
//! chart, the account directory postings consult, and postings themselves
//! (through the `ledger_post` functions of migrations/ledger), which
//! concurrent requests share by group commit.

pub mod accounts;
pub mod chart;
pub mod directory;
pub mod group_commit;
pub mod posting;
