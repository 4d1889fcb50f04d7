//! Replica promotion (issue 6): moving an isolated service's tables onto their own server.
//! In progress (plan: docs/promotion.md): the preflight checks, the chunked table comparison
//! and the write fence exist; the journaled orchestration (`privfence promote
//! plan|run|status|resume|abort`) builds on them.

pub mod account;
pub mod compare;
pub mod fence;
pub mod preflight;
pub mod promotion;
pub mod run;
