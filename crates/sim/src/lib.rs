//! Synthetic traffic (in progress).
