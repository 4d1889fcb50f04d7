//! Talking to servers: connection options, flavour and version detection, the connection handle.

pub mod conn;
pub mod mycnf;
pub mod mylogin;
pub mod redact;
pub mod server;

pub use conn::{ConnectInput, ConnectSpec, Secret, SslMode, DEFAULT_CONNECT_TIMEOUT};
// Pure types, in the model; re-exported where connections are made.
pub use crate::model::flavour::{self, Flavour, ServerInfo, Version};
pub use server::Server;
