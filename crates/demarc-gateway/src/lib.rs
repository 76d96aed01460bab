//! demarc-gateway (placeholder; see ARCHITECTURE.md)
