//! Replica promotion (issue 6, docs/promotion.md): once only a service's own account can touch
//! its tables, move them onto their own server. `run` orchestrates the steps through the
//! session's journal and executor: `preflight`, `account` (the service's account on the
//! replica), `compare` (chunked checksums by key, and the delta after the fence), `fence` (the
//! write fence, never binlogged), `promotion` (the replica becomes the service's server).

pub mod account;
pub mod compare;
pub mod fence;
pub mod guard;
pub mod preflight;
pub mod promotion;
pub mod revert;
pub mod run;
