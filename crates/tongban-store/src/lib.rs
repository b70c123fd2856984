//! Persistent storage for Tongban: one pool over SQLite (embedded) or PostgreSQL (cluster).
#![forbid(unsafe_code)]
