//! `weir group list|describe|delete|reset-offsets`.

use serde_json::{json, Value};

use super::args::{GroupCommand, OutputFormat, ResetOffsetsArgs};
use crate::admin::{Admin, OffsetSpec};
use crate::config::ClientConfig;
use crate::consumer::TopicPartition;
use crate::error::{Error, Result};
use crate::group_admin::GroupDescription;

pub(super) async fn run(
    config: ClientConfig,
    format: OutputFormat,
    command: GroupCommand,
) -> Result<()> {
    let admin = Admin::new(config)?;
    match command {
        GroupCommand::List => {
            let groups = admin.list_groups().await?;
            match format {
                OutputFormat::Json => {
                    let v: Vec<Value> = groups
                        .iter()
                        .map(|g| json!({"group": g.group, "state": g.state, "protocol_type": g.protocol_type}))
                        .collect();
                    println!("{}", Value::Array(v));
                }
                OutputFormat::Text => {
                    for g in groups {
                        println!("{}\t{}", g.group, g.state);
                    }
                }
            }
            Ok(())
        }
        GroupCommand::Describe { group } => {
            let d = admin.describe_group(&group).await?;
            match format {
                OutputFormat::Json => println!("{}", describe_json(&d)),
                OutputFormat::Text => print_describe(&d),
            }
            Ok(())
        }
        GroupCommand::Delete { group } => {
            admin.delete_group(&group).await?;
            eprintln!("deleted group {group}");
            Ok(())
        }
        GroupCommand::ResetOffsets(args) => reset_offsets(&admin, format, args).await,
    }
}

/// The documented JSON shape of `group describe`.
pub fn describe_json(d: &GroupDescription) -> Value {
    json!({
        "group": d.group,
        "state": d.state,
        "generation": d.generation,
        "protocol": d.protocol,
        "members": d.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "client_id": m.client_id,
            "host": m.host,
            "assignment": m.assignment.iter().map(|tp| json!({"topic": tp.topic, "partition": tp.partition})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "offsets": d.offsets.iter().map(|o| json!({
            "topic": o.topic,
            "partition": o.partition,
            "committed_offset": o.committed_offset,
            "log_end_offset": o.log_end_offset,
            "lag": o.lag,
            "lag_ms": o.lag_ms,
        })).collect::<Vec<_>>(),
    })
}

fn print_describe(d: &GroupDescription) {
    println!(
        "group {}  state {}  generation {}  protocol {}",
        d.group, d.state, d.generation, d.protocol
    );
    for m in &d.members {
        let parts: Vec<String> = m.assignment.iter().map(TopicPartition::to_string).collect();
        println!(
            "  member {} ({}) {}: {}",
            m.member_id,
            m.client_id,
            m.host,
            parts.join(" ")
        );
    }
    println!("  TOPIC\tPARTITION\tCOMMITTED\tLOG-END\tLAG\tLAG_MS");
    let dash = |v: Option<i64>| v.map_or("-".to_string(), |x| x.to_string());
    for o in &d.offsets {
        println!(
            "  {}\t{}\t{}\t{}\t{}\t{}",
            o.topic,
            o.partition,
            o.committed_offset,
            dash(o.log_end_offset),
            dash(o.lag),
            dash(o.lag_ms)
        );
    }
}

async fn reset_offsets(admin: &Admin, format: OutputFormat, args: ResetOffsetsArgs) -> Result<()> {
    let parts: Vec<i32> = args.partition.map(|p| vec![p]).unwrap_or_default();
    let earliest = admin
        .list_offsets(&args.topic, &parts, OffsetSpec::Earliest)
        .await?;
    let latest = admin
        .list_offsets(&args.topic, &parts, OffsetSpec::Latest)
        .await?;
    let committed: std::collections::BTreeMap<i32, i64> = admin
        .group_offsets(&args.group, &args.topic)
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    let by_time = match &args.to_datetime {
        Some(s) => {
            let ms = parse_rfc3339(s).ok_or_else(|| {
                Error::Config(format!(
                    "--to-datetime: {s:?} is not RFC 3339 (e.g. 2026-01-02T03:04:05Z)"
                ))
            })?;
            Some(
                admin
                    .list_offsets(&args.topic, &parts, OffsetSpec::Timestamp(ms))
                    .await?,
            )
        }
        None => None,
    };
    let mut plan: Vec<(i32, Option<i64>, i64)> = Vec::new();
    for (&p, &lo) in &earliest {
        let hi = latest.get(&p).copied().unwrap_or(lo);
        let current = committed.get(&p).copied().filter(|o| *o >= 0);
        let target = if args.to_earliest {
            lo
        } else if args.to_latest {
            hi
        } else if let Some(o) = args.to_offset {
            o
        } else if let Some(t) = &by_time {
            // No record that late: the end.
            t.get(&p).copied().filter(|o| *o >= 0).unwrap_or(hi)
        } else if let Some(n) = args.shift_by {
            current.unwrap_or(lo).saturating_add(n)
        } else {
            return Err(Error::Config("choose a target (--to-earliest, ...)".into()));
        };
        plan.push((p, current, target.clamp(lo, hi.max(lo))));
    }
    match format {
        OutputFormat::Json => {
            let v: Vec<Value> = plan
                .iter()
                .map(|(p, c, t)| json!({"topic": args.topic, "partition": p, "current_offset": c, "new_offset": t}))
                .collect();
            println!(
                "{}",
                json!({"group": args.group, "executed": args.execute, "plan": v})
            );
        }
        OutputFormat::Text => {
            println!("TOPIC\tPARTITION\tCURRENT\tNEW");
            for (p, c, t) in &plan {
                println!(
                    "{}\t{}\t{}\t{}",
                    args.topic,
                    p,
                    c.map_or("-".into(), |x| x.to_string()),
                    t
                );
            }
        }
    }
    if !args.execute {
        eprintln!("dry run: nothing changed; add --execute to apply");
        return Ok(());
    }
    if let Ok(d) = admin.describe_group(&args.group).await {
        if !d.members.is_empty() {
            return Err(Error::Config(format!(
                "group {} has {} active member(s) (state {}); stop its consumers before resetting offsets",
                args.group,
                d.members.len(),
                d.state
            )));
        }
    }
    let offsets: Vec<(TopicPartition, i64)> = plan
        .iter()
        .map(|(p, _, t)| (TopicPartition::new(args.topic.as_str(), *p), *t))
        .collect();
    admin.commit_group_offsets(&args.group, &offsets).await?;
    eprintln!(
        "reset {} partition(s) of {} for group {}",
        offsets.len(),
        args.topic,
        args.group
    );
    Ok(())
}

/// Milliseconds since the epoch of an RFC 3339 timestamp
/// (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let tz_at = rest.find(['Z', 'z', '+', '-'])?;
    let (time, tz) = rest.split_at(tz_at);
    let mut t = time.splitn(3, ':');
    let (h, mi): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let sec_str = t.next()?;
    let (sec, frac) = match sec_str.split_once('.') {
        Some((a, b)) => (a.parse::<i64>().ok()?, b),
        None => (sec_str.parse::<i64>().ok()?, ""),
    };
    let ms_frac: i64 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        digits.parse().ok()?
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let offset_min = match tz {
        "Z" | "z" => 0,
        _ => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let (oh, om) = tz.get(1..)?.split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + ms_frac)
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.5Z"),
            Some(1_709_208_000_500)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T13:00:00+01:00"),
            Some(1_709_208_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
    }
}
