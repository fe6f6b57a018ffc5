//! The patterns of the notes, each as an application of the driver
//! ([`crate::server::Handler`]): what the server does, not how bytes move.

pub mod chat;
pub mod frame_log;
pub mod jobs;
pub mod journal;
pub mod log;
pub mod polling;
pub mod pubsub;
pub mod push;
pub mod record_file;
pub mod relay;
pub mod request_response;
pub mod upload;
pub mod websocket;
