//! What `INFO` replies say of the store's servers: keys and memory, per server.

use redis::Value;

/// One server of the store as [`Store::nodes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSize {
    /// `host:port` of a cluster's primary, or the URL of the one server.
    pub addr: String,
    /// Keys it holds.
    pub keys: u64,
    /// Memory it uses (`used_memory`, bytes).
    pub used_memory_bytes: u64,
}

/// A reply as text (`INFO` sections, node addresses).
pub(crate) fn text_of(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::SimpleString(s) => s.clone(),
        _ => String::new(),
    }
}

/// The number after `field:` in an `INFO` text (0 when absent).
pub(crate) fn info_field(text: &str, field: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `used_memory` of an `INFO memory` reply: one server's text, or a cluster's map of node →
/// text (summed).
pub(crate) fn used_memory(v: &Value) -> u64 {
    match v {
        Value::Map(m) => m.iter().map(|(_, v)| used_memory(v)).sum(),
        other => info_field(&text_of(other), "used_memory"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_memory_of_one_server_and_of_a_cluster() {
        let text = "# Memory\r\nused_memory:1000\r\nused_memory_human:1K\r\n";
        let one = Value::BulkString(text.as_bytes().to_vec());
        assert_eq!(used_memory(&one), 1000);
        let map = Value::Map(vec![
            (Value::BulkString(b"a:1".to_vec()), one.clone()),
            (Value::BulkString(b"b:2".to_vec()), one),
        ]);
        assert_eq!(used_memory(&map), 2000);
        assert_eq!(used_memory(&Value::Nil), 0);
        // `used_memory_human:` and the like are not `used_memory:`.
        assert_eq!(
            info_field("used_memory_rss:5\r\nused_memory:7\r\n", "used_memory"),
            7
        );
    }
}
