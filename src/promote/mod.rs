//! Replica promotion (issue 6): moving an isolated service's tables onto their own server.
//! In progress: the preflight checks and the chunked table comparison come first; the
//! journaled orchestration (`privfence promote plan|run|status|resume|abort`) builds on them.

pub mod compare;
pub mod preflight;
