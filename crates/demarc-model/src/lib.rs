//! demarc-model (placeholder; see ARCHITECTURE.md)
