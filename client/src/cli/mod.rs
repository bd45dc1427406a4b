//! The `weir` command line: argument definitions ([`args`]), output shaping ([`output`])
//! and one module per command group.

pub mod args;
pub mod consume;
pub mod output;
pub mod produce;
pub mod topic;
