//! Preflight checks of a promotion (in progress).
