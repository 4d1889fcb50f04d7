//! The output object.
