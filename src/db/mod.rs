//! Talking to servers: connection options, flavour and version detection, the connection handle.

pub mod conn;
pub mod flavour;
pub mod mycnf;
pub mod mylogin;
pub mod redact;
pub mod server;

pub use conn::{ConnectInput, ConnectSpec, Secret, SslMode, DEFAULT_CONNECT_TIMEOUT};
pub use flavour::{Flavour, ServerInfo, Version};
pub use server::Server;
