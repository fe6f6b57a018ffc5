//! # wirepatterns
//!
//! Backend communication patterns built from scratch over raw TCP, each one measured.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod http;
