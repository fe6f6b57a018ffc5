//! Placeholder: IMF-fixdate (being written).
