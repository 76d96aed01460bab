//! demarc-store (placeholder; see ARCHITECTURE.md)
