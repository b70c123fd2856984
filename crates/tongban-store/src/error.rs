//! Storage errors: typed, so callers map them to envelope codes without parsing text.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the record changed since the caller read it.
    #[error("version conflict: expected {expected}, found {actual}")]
    Conflict { expected: String, actual: String },
    #[error("not found")]
    NotFound,
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("migration {version} ({name}): {message}")]
    Migration {
        version: i64,
        name: String,
        message: String,
    },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}
