//! Chunked comparison of the moved tables on the primary and the replica (in progress).
