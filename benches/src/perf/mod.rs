//! `weir-perf`, the end-to-end load tool.
//!
//! Layout:
//! - [`args`]: command line, validation (loopback only).
//! - [`pace`]: intended send times (coordinated-omission correction) and payloads;
//!   [`stamp`]: send times carried in values for end-to-end latency.
//! - [`collect`]: awaits acks in send order and records latencies.
//! - [`report`]: the result, as text or one JSON object; [`cpu`]: `/proc/<pid>/stat`.
//! - Drivers, one per system: [`weir`] (weir-client), [`redis`] (over [`resp`], a minimal
//!   pipelined RESP client), [`nats`] (async-nats).

pub mod args;
pub mod collect;
pub mod cpu;
pub mod error;
pub mod nats;
pub mod pace;
pub mod redis;
pub mod report;
pub mod resp;
pub mod stamp;
pub mod timeline;
pub mod weir;

use args::{Args, Command, System};
use error::Result;
use report::Report;

/// Runs one workload and returns its report.
pub async fn run(command: Command) -> Result<Report> {
    let (kind, args) = match &command {
        Command::Produce(a) => ("produce", a),
        Command::Consume(a) => ("consume", a),
        Command::EndToEnd(a) => ("end-to-end", a),
    };
    args.validate(matches!(command, Command::EndToEnd(_)))?;
    let label = args.workload.clone().unwrap_or_else(|| kind.to_owned());
    let mut report = Report::new(&label, args.system.name());
    let server_before = args.server_pid.map(cpu::cpu_seconds).transpose()?;
    let idle = open_idle(args).await?;
    let client_before = cpu::own_cpu_seconds().ok();
    dispatch(&command, args, &mut report).await?;
    drop(idle);
    if let (Some(pid), Some(before)) = (args.server_pid, server_before) {
        report.server_cpu_s = Some(cpu::cpu_seconds(pid)? - before);
    }
    if let (Ok(after), Some(before)) = (cpu::own_cpu_seconds(), client_before) {
        report.client_cpu_s = Some(after - before);
    }
    report
        .extra
        .insert("record_size".into(), args.record_size.into());
    if args.system == System::Weir && args.compression == weir_protocol::batch::Compression::Zstd {
        report
            .extra
            .insert("zstd_level".into(), args.zstd_level.into());
    }
    Ok(report)
}

/// Opens `--idle-connections` connections to the first bootstrap address.
async fn open_idle(args: &Args) -> Result<Vec<tokio::net::TcpStream>> {
    let addr = args
        .bootstrap
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or_default()
        .to_owned();
    let mut out = Vec::with_capacity(args.idle_connections);
    for _ in 0..args.idle_connections {
        let c = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(error::PerfError::io(format!("idle connection to {addr}")))?;
        out.push(c);
    }
    Ok(out)
}

async fn dispatch(command: &Command, args: &Args, report: &mut Report) -> Result<()> {
    match (command, args.system) {
        (Command::Produce(_), System::Weir) => weir::produce(args, report).await,
        (Command::Consume(_), System::Weir) => weir::consume(args, report).await,
        (Command::EndToEnd(_), System::Weir) => weir::end_to_end(args, report).await,
        (Command::Produce(_), System::Redis) => redis::produce(args, report).await,
        (Command::Consume(_), System::Redis) => redis::consume(args, report).await,
        (Command::EndToEnd(_), System::Redis) => redis::end_to_end(args, report).await,
        (Command::Produce(_), System::Nats) => nats::produce(args, report).await,
        (Command::Consume(_), System::Nats) => nats::consume(args, report).await,
        (Command::EndToEnd(_), System::Nats) => nats::end_to_end(args, report).await,
    }
}
