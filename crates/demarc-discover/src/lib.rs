//! demarc-discover (placeholder; see ARCHITECTURE.md)
