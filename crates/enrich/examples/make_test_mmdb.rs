//! Test-data tool: writes the two tiny MaxMind-format databases the enrich tests use,
//! `tests/data/test-asn.mmdb` and `tests/data/test-country.mmdb` (see `tests/data/mmdb.md`).
//!
//! ```text
//! cargo run -p burstwatch-enrich --example make_test_mmdb [OUT_DIR]   # default: tests/data
//! ```
//!
//! It holds a minimal writer for the MaxMind DB file format 2.0: an IPv6 search tree of 24-bit
//! records with IPv4 networks under `::/96` and `::ffff:0:0/96` aliased to them (as GeoLite2
//! files do), a data section of maps, strings and unsigned integers (no pointers, identical
//! records stored once), the 16-byte separator, and the metadata map after the
//! `\xAB\xCD\xEFMaxMind.com` marker. Output is deterministic (fixed build time), so
//! regenerating gives byte-identical files; a test checks the committed files against it.
//!
//! Every network and number in the databases is reserved for documentation or testing
//! (RFC 5737, RFC 2544, RFC 3849, RFC 5398 ASNs), and the country codes `XA`/`XB`/`XC` are
//! user-assigned ISO 3166 codes that no real country has.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Fixed build time of the test databases (2026-01-01T00:00:00Z), for reproducible bytes.
pub const BUILD_EPOCH: u64 = 1_767_225_600;

/// A value of the MaxMind DB data section (only the types the test databases need).
#[derive(Debug, Clone)]
pub enum Value {
    /// UTF-8 string (type 2).
    Str(String),
    /// Unsigned 16-bit integer (type 5).
    U16(u16),
    /// Unsigned 32-bit integer (type 6).
    U32(u32),
    /// Unsigned 64-bit integer (type 9).
    U64(u64),
    /// Map with string keys (type 7), in the given order.
    Map(Vec<(String, Value)>),
    /// Array (type 11).
    Array(Vec<Value>),
}

/// `Value::Str` from a `&str`.
pub fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

/// `Value::Map` from `(&str, Value)` pairs.
pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// Writes a control byte (and extended-type byte) for a field of `type_num` and `size`.
fn control(out: &mut Vec<u8>, type_num: u8, size: usize) {
    let (first, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else if size < 285 + 65_536 {
        let n = size - 285;
        (30, vec![(n >> 8) as u8, n as u8])
    } else {
        let n = size - 65_821;
        assert!(n < 1 << 24, "field too large for the MaxMind DB format");
        (31, vec![(n >> 16) as u8, (n >> 8) as u8, n as u8])
    };
    if type_num <= 7 {
        out.push(type_num << 5 | first);
    } else {
        out.push(first);
        out.push(type_num - 7);
    }
    out.extend_from_slice(&extra);
}

/// Big-endian bytes of `v` without leading zeros (zero is no bytes).
fn uint(out: &mut Vec<u8>, type_num: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, type_num, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends the encoding of `v`.
pub fn encode(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(t) => {
            control(out, 2, t.len());
            out.extend_from_slice(t.as_bytes());
        }
        Value::U16(n) => uint(out, 5, u64::from(*n)),
        Value::U32(n) => uint(out, 6, u64::from(*n)),
        Value::U64(n) => uint(out, 9, *n),
        Value::Map(entries) => {
            control(out, 7, entries.len());
            for (k, val) in entries {
                encode(out, &Value::Str(k.clone()));
                encode(out, val);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for item in items {
                encode(out, item);
            }
        }
    }
}

/// One record of a search-tree node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rec {
    /// No data for this network.
    Empty,
    /// Another node.
    Node(usize),
    /// A record at this offset in the data section.
    Data(usize),
}

/// A MaxMind DB (format 2.0, IPv6 tree, 24-bit records) under construction.
pub struct Writer {
    database_type: String,
    description: String,
    nodes: Vec<[Rec; 2]>,
    data: Vec<u8>,
    stored: HashMap<Vec<u8>, usize>,
}

impl Writer {
    /// An empty database with this `database_type` and English description.
    pub fn new(database_type: &str, description: &str) -> Self {
        Self {
            database_type: database_type.to_owned(),
            description: description.to_owned(),
            nodes: vec![[Rec::Empty; 2]],
            data: Vec::new(),
            stored: HashMap::new(),
        }
    }

    /// Maps the network `cidr` (`a.b.c.d/n` or `x::/n`, n >= 1) to `record`. IPv4 networks go
    /// under `::/96`. Insert wider networks before narrower ones inside them: an insert
    /// replaces whatever was at or under its network.
    pub fn insert(&mut self, cidr: &str, record: &Value) -> Result<(), String> {
        let (addr, len) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr}: expected ADDRESS/PREFIX"))?;
        let addr: IpAddr = addr.parse().map_err(|e| format!("{cidr}: {e}"))?;
        let len: u32 = len.parse().map_err(|e| format!("{cidr}: {e}"))?;
        let (bits, len) = match addr {
            IpAddr::V4(a) if (1..=32).contains(&len) => (u128::from(u32::from(a)), 96 + len),
            IpAddr::V6(a) if (1..=128).contains(&len) => (u128::from(a), len),
            _ => return Err(format!("{cidr}: prefix length out of range")),
        };
        let offset = self.store(record);
        let bit = |depth: u32| ((bits >> (127 - depth)) & 1) as usize;
        let mut node = 0;
        for depth in 0..len - 1 {
            node = self.descend(node, bit(depth));
        }
        self.nodes[node][bit(len - 1)] = Rec::Data(offset);
        Ok(())
    }

    /// Follows (creating or splitting as needed) record `side` of `node` to a node.
    fn descend(&mut self, node: usize, side: usize) -> usize {
        match self.nodes[node][side] {
            Rec::Node(n) => n,
            other => {
                // An empty network gets an empty child; a data network is split in two halves
                // that keep its data.
                let child = self.nodes.len();
                self.nodes.push([other; 2]);
                self.nodes[node][side] = Rec::Node(child);
                child
            }
        }
    }

    /// Stores `record` in the data section once; returns its offset.
    fn store(&mut self, record: &Value) -> usize {
        let mut bytes = Vec::new();
        encode(&mut bytes, record);
        if let Some(&off) = self.stored.get(&bytes) {
            return off;
        }
        let off = self.data.len();
        self.data.extend_from_slice(&bytes);
        self.stored.insert(bytes, off);
        off
    }

    /// Points `::ffff:0:0/96` (IPv4-mapped IPv6) at the IPv4 subtree under `::/96`, when
    /// there is one, as GeoLite2 databases do.
    fn alias_ipv4_mapped(&mut self) {
        let mut node = 0;
        for _ in 0..95 {
            match self.nodes[node][0] {
                Rec::Node(n) => node = n,
                _ => return,
            }
        }
        let ipv4 = self.nodes[node][0];
        let mapped: u128 = 0xffff << 32;
        let mut node = 0;
        for depth in 0..95 {
            node = self.descend(node, ((mapped >> (127 - depth)) & 1) as usize);
        }
        self.nodes[node][1] = ipv4;
    }

    /// The finished file's bytes.
    pub fn finish(mut self, build_epoch: u64) -> Vec<u8> {
        self.alias_ipv4_mapped();
        let node_count = self.nodes.len();
        let value = |r: Rec| -> u32 {
            let v = match r {
                Rec::Empty => node_count,
                Rec::Node(n) => n,
                Rec::Data(off) => node_count + 16 + off,
            };
            assert!(v < 1 << 24, "database too large for 24-bit records");
            v as u32
        };
        let mut out = Vec::with_capacity(node_count * 6 + 16 + self.data.len() + 512);
        for [left, right] in &self.nodes {
            out.extend_from_slice(&value(*left).to_be_bytes()[1..]);
            out.extend_from_slice(&value(*right).to_be_bytes()[1..]);
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = map([
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(build_epoch)),
            ("database_type", s(&self.database_type)),
            ("description", map([("en", s(&self.description))])),
            ("ip_version", Value::U16(6)),
            ("languages", Value::Array(vec![s("en")])),
            ("node_count", Value::U32(node_count as u32)),
            ("record_size", Value::U16(24)),
        ]);
        encode(&mut out, &metadata);
        out
    }
}

/// A GeoLite2-ASN-layout record.
fn asn_record(number: u32, org: Option<&str>) -> Value {
    let mut entries = vec![("autonomous_system_number".to_owned(), Value::U32(number))];
    if let Some(org) = org {
        entries.push(("autonomous_system_organization".to_owned(), s(org)));
    }
    Value::Map(entries)
}

/// A GeoLite2-Country-layout country object.
fn country_obj(iso: &str, name: &str) -> Value {
    map([("iso_code", s(iso)), ("names", map([("en", s(name))]))])
}

/// The bytes of `tests/data/test-asn.mmdb`.
pub fn asn_db() -> Vec<u8> {
    let mut w = Writer::new(
        "GeoLite2-ASN",
        "burstwatch test ASN database: documentation networks only",
    );
    let rows: [(&str, u32, Option<&str>); 5] = [
        ("192.0.2.0/24", 64500, Some("Example Documentation Net A")),
        (
            "198.51.100.0/24",
            64501,
            Some("Example Documentation Net B"),
        ),
        // No organization: exercises a record that lacks the field.
        ("203.0.113.0/24", 64502, None),
        ("198.18.0.0/15", 64510, Some("Example Benchmark Net")),
        ("2001:db8::/32", 64511, Some("Example Documentation Net v6")),
    ];
    for (cidr, number, org) in rows {
        w.insert(cidr, &asn_record(number, org))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    w.finish(BUILD_EPOCH)
}

/// The bytes of `tests/data/test-country.mmdb`.
pub fn country_db() -> Vec<u8> {
    let mut w = Writer::new(
        "GeoLite2-Country",
        "burstwatch test country database: documentation networks, user-assigned codes only",
    );
    let a = country_obj("XA", "Example Country A");
    let b = country_obj("XB", "Example Country B");
    let c = country_obj("XC", "Example Country C");
    let rows = [
        (
            "192.0.2.0/24",
            map([("country", a.clone()), ("registered_country", a.clone())]),
        ),
        (
            "198.51.100.0/24",
            map([("country", b.clone()), ("registered_country", a.clone())]),
        ),
        // Only the registered country: exercises the fallback.
        ("203.0.113.0/24", map([("registered_country", a)])),
        (
            "2001:db8::/32",
            map([("country", c.clone()), ("registered_country", c)]),
        ),
    ];
    for (cidr, record) in rows {
        w.insert(cidr, &record).unwrap_or_else(|e| panic!("{e}"));
    }
    w.finish(BUILD_EPOCH)
}

#[allow(dead_code)] // unused when this file is included by the tests
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data"),
        PathBuf::from,
    );
    for (name, bytes) in [
        ("test-asn.mmdb", asn_db()),
        ("test-country.mmdb", country_db()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, &bytes)?;
        println!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
