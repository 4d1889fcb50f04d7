//! Talking to servers: connection options, flavour and version detection.

pub mod flavour;

pub use flavour::{Flavour, ServerInfo, Version};
