//! The patterns of the notes, each as an application of the driver
//! ([`crate::server::Handler`]): what the server does, not how bytes move.

pub mod request_response;
