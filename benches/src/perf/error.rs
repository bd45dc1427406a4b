//! The load tool's one error type.

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// Bad flags or a refused address.
    #[error("{0}")]
    Config(String),
    /// A socket or /proc read failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The Weir client reported an error.
    #[error("weir: {0}")]
    Weir(#[from] weir_client::Error),
    /// Redis answered with an error or an unexpected reply.
    #[error("redis: {0}")]
    Redis(String),
    /// The NATS client reported an error.
    #[error("nats: {0}")]
    Nats(String),
}

impl PerfError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PerfError {
        let context = context.into();
        move |source| PerfError::Io { context, source }
    }
}

/// Result alias of the load tool.
pub type Result<T> = std::result::Result<T, PerfError>;
