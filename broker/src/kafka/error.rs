//! Why a Kafka connection is closed or a request cannot be answered. Request-level
//! failures travel inside responses as error codes (the native handlers already chose
//! them); what is left here closes the connection, as Kafka does for a request it cannot
//! parse (kafka-wire-compat.md §1.6).

use kafka_protocol::messages::ApiKey;

/// A failure that ends the connection.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The request header is malformed.
    #[error("bad request header: {0}")]
    Header(#[from] crate::kafka::header::HeaderError),
    /// An API this listener does not serve, or a version outside its advertised range.
    #[error("{key:?} version {version} is not supported")]
    Unsupported {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The body does not decode at the version in its header.
    #[error("cannot decode {key:?} v{version}: {reason}")]
    Decode {
        /// The API.
        key: ApiKey,
        /// Its version.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
    /// A response could not be encoded at the request's version (a bug: a field was set
    /// that the version lacks).
    #[error("cannot encode {key:?} v{version} response: {reason}")]
    Encode {
        /// The API.
        key: ApiKey,
        /// Its version.
        version: i16,
        /// What the encoder said.
        reason: String,
    },
    /// The native handler answered with something other than the expected body.
    #[error("internal: {0}")]
    Internal(String),
}
