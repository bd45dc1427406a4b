//! The broker's view of partition storage: the `weir-storage` types it uses, re-exported
//! so every broker module imports them from one place.

pub use weir_storage::cleaner::Cleaner;
pub use weir_storage::{AppendInfo, CleanupPolicy, Error, Log, LogConfig, ReadInfo, Shutdown};
