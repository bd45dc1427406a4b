//! DeleteTopics (20).

use weir_protocol::native::v1::{DeletableTopicResult, DeleteTopicsRequest, DeleteTopicsResponse};
use weir_protocol::ErrorCode;

use crate::ctx::BrokerCtx;
use crate::names::{is_internal_topic, validate_topic_name};

/// Deletes each named topic and its data.
pub async fn handle(ctx: &BrokerCtx, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut responses = Vec::with_capacity(req.topic_names.len());
    for name in req.topic_names {
        let result = match validate_topic_name(&name) {
            Err(e) => Err((ErrorCode::InvalidTopicException, e.to_string())),
            // The group coordinator owns it; deleting it would drop every committed offset.
            Ok(()) if is_internal_topic(&name) => Err((
                ErrorCode::InvalidTopicException,
                format!("cannot delete internal topic {name}"),
            )),
            Ok(()) => ctx
                .controller
                .delete_topic(&name)
                .await
                .map_err(|e| (e.code, e.message)),
        };
        let (code, message) = result.err().unwrap_or((ErrorCode::None, String::new()));
        responses.push(DeletableTopicResult {
            name,
            error_code: code.as_i32(),
            error_message: message,
        });
    }
    DeleteTopicsResponse {
        responses,
        throttle_time_ms: 0,
    }
}
