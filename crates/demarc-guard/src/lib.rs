//! demarc-guard (placeholder; see ARCHITECTURE.md)
