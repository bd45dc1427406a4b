//! Topic names become directory names (`<topic>-<partition>`), so they are checked before
//! any path is built: Kafka's rule (apache/kafka `Topic.java`), which also rules out path
//! traversal.

/// Longest topic name (Kafka's limit, which keeps `<topic>-<partition>` under 255 bytes).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Topics the broker itself writes; clients may read them but not create or produce to them.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// Whether `name` is one of [`INTERNAL_TOPICS`].
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Why a topic name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    /// Empty.
    #[error("topic name is empty")]
    Empty,
    /// "." or "..".
    #[error("topic name cannot be \".\" or \"..\"")]
    Dots,
    /// Over 249 characters.
    #[error("topic name is {0} characters; at most 249 are allowed")]
    TooLong(usize),
    /// A character outside `[a-zA-Z0-9._-]`.
    #[error("topic name contains {0:?}; only ASCII letters, digits, '.', '_' and '-' are allowed")]
    BadChar(char),
}

/// Checks `name` against `[a-zA-Z0-9._-]{1,249}`, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(TopicNameError::Dots);
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicNameError::TooLong(name.chars().count()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicNameError::BadChar(c));
    }
    Ok(())
}

/// Directory name of a partition; only call with a validated topic name.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Splits a directory name back into (topic, partition) if it has that shape and a valid
/// topic name.
pub fn parse_partition_dir_name(dir: &str) -> Option<(&str, i32)> {
    let (topic, p) = dir.rsplit_once('-')?;
    let partition: i32 = p.parse().ok()?;
    if partition < 0 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    validate_topic_name(topic).ok()?;
    Some((topic, partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert_eq!(validate_topic_name(""), Err(TopicNameError::Empty));
        assert_eq!(validate_topic_name(".."), Err(TopicNameError::Dots));
        assert_eq!(validate_topic_name("."), Err(TopicNameError::Dots));
        assert_eq!(
            validate_topic_name("a/b"),
            Err(TopicNameError::BadChar('/'))
        );
        assert_eq!(
            validate_topic_name("../etc"),
            Err(TopicNameError::BadChar('/'))
        );
        assert!(validate_topic_name("é").is_err());
        assert!(validate_topic_name("a\0").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert_eq!(
            validate_topic_name(&"a".repeat(300)),
            Err(TopicNameError::TooLong(300))
        );
    }

    #[test]
    fn dir_names_round_trip() {
        assert_eq!(parse_partition_dir_name("a-b-12"), Some(("a-b", 12)));
        assert_eq!(parse_partition_dir_name("meta"), None);
        assert_eq!(parse_partition_dir_name("x-+1"), None);
        assert_eq!(
            parse_partition_dir_name(&partition_dir_name("t", 3)),
            Some(("t", 3))
        );
    }
}
