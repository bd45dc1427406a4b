//! Whether an admin answer says "not the controller" (the controller moved between the
//! client's Metadata request and this one), so `Client::request_controller` retries it.

use weir_protocol::native::v1;
use weir_protocol::ErrorCode;

/// An answer from the controller.
pub trait ControllerAnswer {
    /// True when the broker answered NOT_CONTROLLER (for any item).
    fn not_controller(&self) -> bool;
}

fn is_nc(code: i32) -> bool {
    ErrorCode::from_i32(code) == ErrorCode::NotController
}

impl ControllerAnswer for v1::CreateTopicsResponse {
    fn not_controller(&self) -> bool {
        self.topics.iter().any(|t| is_nc(t.error_code))
    }
}

impl ControllerAnswer for v1::DeleteTopicsResponse {
    fn not_controller(&self) -> bool {
        self.responses.iter().any(|t| is_nc(t.error_code))
    }
}

impl ControllerAnswer for v1::CreatePartitionsResponse {
    fn not_controller(&self) -> bool {
        self.results.iter().any(|t| is_nc(t.error_code))
    }
}

impl ControllerAnswer for v1::AlterConfigsResponse {
    fn not_controller(&self) -> bool {
        self.responses.iter().any(|t| is_nc(t.error_code))
    }
}

impl ControllerAnswer for v1::InitProducerIdResponse {
    fn not_controller(&self) -> bool {
        is_nc(self.error_code)
    }
}

impl ControllerAnswer for v1::DescribeQuorumResponse {
    fn not_controller(&self) -> bool {
        false
    }
}

impl ControllerAnswer for v1::AlterPartitionReassignmentsResponse {
    fn not_controller(&self) -> bool {
        is_nc(self.error_code)
    }
}

impl ControllerAnswer for v1::ListPartitionReassignmentsResponse {
    fn not_controller(&self) -> bool {
        is_nc(self.error_code)
    }
}
