//! The bridge to the native handlers: a translated request goes through the same
//! `handlers::dispatch` as a native one (same code, same metrics), so no API is
//! implemented twice.

use weir_protocol::native::v1::request_envelope::Body as Req;
use weir_protocol::native::v1::response_envelope::Body as Resp;
use weir_protocol::native::v1::RequestEnvelope;

use super::error::KafkaError;
use crate::ctx::BrokerCtx;
use crate::handlers::dispatch_with;
use crate::server::AppendTurn;
use weir_storage::FileSlice;

/// Runs `body` through the native dispatcher. `Ok(None)`: the handler sends nothing back
/// (Produce with acks=0).
pub async fn call(ctx: &BrokerCtx, client_id: &str, body: Req) -> Result<Option<Resp>, KafkaError> {
    call_in_turn(ctx, client_id, body, None).await
}

/// [`call`] with the connection's append turn (Produce).
pub async fn call_in_turn(
    ctx: &BrokerCtx,
    client_id: &str,
    body: Req,
    turn: Option<AppendTurn>,
) -> Result<Option<Resp>, KafkaError> {
    let answer = call_with(ctx, client_id, body, turn, false).await?;
    Ok(answer.map(|(resp, _)| resp))
}

/// [`call`] that lets a Fetch leave records in segment files (`ctx.fetch_zero_copy`):
/// the response, and per partition in response order the records to send from files.
pub async fn call_zero_copy(
    ctx: &BrokerCtx,
    client_id: &str,
    body: Req,
) -> Result<Option<(Resp, Vec<Option<FileSlice>>)>, KafkaError> {
    call_with(ctx, client_id, body, None, ctx.fetch_zero_copy).await
}

async fn call_with(
    ctx: &BrokerCtx,
    client_id: &str,
    body: Req,
    turn: Option<AppendTurn>,
    zero_copy: bool,
) -> Result<Option<(Resp, Vec<Option<FileSlice>>)>, KafkaError> {
    let envelope = RequestEnvelope {
        correlation_id: 0,
        client_id: client_id.to_string(),
        api_version: 0,
        body: Some(body),
    };
    match dispatch_with(ctx, envelope, turn, zero_copy).await {
        None => Ok(None),
        Some(r) if r.envelope.error_code != 0 => Err(KafkaError::Internal(format!(
            "native handler refused the request ({}): {}",
            r.envelope.error_code, r.envelope.error_message
        ))),
        Some(r) => Ok(r.envelope.body.map(|b| (b, r.in_file))),
    }
}

/// `call` for an API that always answers with `Resp::$variant`.
macro_rules! native {
    ($ctx:expr, $client:expr, $variant:ident, $req:expr) => {
        match $crate::kafka::native::call(
            $ctx,
            $client,
            weir_protocol::native::v1::request_envelope::Body::$variant($req),
        )
        .await?
        {
            Some(weir_protocol::native::v1::response_envelope::Body::$variant(r)) => r,
            _ => {
                return Err($crate::kafka::error::KafkaError::Internal(format!(
                    "native {} handler gave no {} response",
                    stringify!($variant),
                    stringify!($variant)
                )))
            }
        }
    };
}
pub(crate) use native;
