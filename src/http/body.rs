//! Placeholder: body decoder (being written).
/// Placeholder.
pub struct BodyDecoder;
/// Placeholder.
pub struct Decoded;
