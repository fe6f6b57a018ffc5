//! Placeholder: responses (being written).
/// Placeholder.
pub struct Response;
