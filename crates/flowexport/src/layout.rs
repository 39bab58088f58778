//! IPFIX data records read by offset once the parser has shown how.
//!
//! The parser decodes every field of every data record into a vector of typed values. On a
//! realistic export that costs more than the rest of the collector together, for the nine or
//! so fields this crate reads. So the collector keeps, per (exporter, observation domain,
//! template id), where those fields sit in a record of the template (a [`Layout`]), learned
//! from the template sets the parser returns. A layout is used only after the parser has
//! decoded data with that template and every field of that record matched it (the parser
//! took the template, and reads it as the layout does). After that, a message whose every
//! set is data of such layouts is read here, record by record, without the parser.
//! Everything else goes through the parser as before: template and options-template sets,
//! options data, data of a template not yet confirmed (restored from the state file, or just
//! learned), variable-length fields, damaged or unusual messages, NetFlow v9 and v5.
//!
//! The usual types and lengths (unsigned numbers, times in seconds or milliseconds,
//! addresses, the protocol) are read from the bytes here, in the forms the parser's value
//! would give ([`Flat::set_plain`]); any other field this crate reads is made by the
//! parser's own [`FieldValue::from_field_type`] and taken by [`Flat::set`], as on the parser
//! path. Tests compare both paths on random templates of every such field in usual and
//! unusual lengths. A set gives at most the parser's
//! records per set ([`DEFAULT_MAX_RECORDS_PER_FLOWSET`]); trailing bytes shorter than a
//! record are padding, as for the parser.
//!
//! The parser does not return withdrawals, nor the templates it refuses. So any message of
//! an exporter and domain that carries a set other than data (a template, options-template
//! or v9-style set, or sets this crate cannot walk) sends every layout of that exporter and
//! domain back to waiting for the parser's confirmation, before the parser reads it.
//!
//! What still differs: the parser's template cache evicts its least recently used templates
//! over its cap, while a confirmed layout stays until the exporter sends templates again (at
//! most [`MAX_LAYOUTS`] in all). Data of a template the parser has evicted is therefore still
//! read here, where the parser would have held it as a template miss.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use netflow_parser::variable_versions::field_value::{FieldDataType, FieldValue};
use netflow_parser::variable_versions::ipfix::lookup::IPFixField;
use netflow_parser::variable_versions::ipfix::{IPFixFieldPair, Template, TemplateField};
use netflow_parser::variable_versions::DEFAULT_MAX_RECORDS_PER_FLOWSET;
use netflow_parser::EnterpriseFieldRegistry;

use crate::record::{ipfix_field, Flat, Plain, F};

/// Layouts kept at most, every exporter together.
pub(crate) const MAX_LAYOUTS: usize = 16_384;
/// Fields read per record at most (a template naming more of them is left to the parser).
const MAX_READS: usize = 32;

const MESSAGE_HEADER: usize = 16;
const SET_HEADER: usize = 4;
/// Set ids from here up are data sets (RFC 7011 §3.3.2).
const FIRST_DATA_SET_ID: u16 = 256;
/// A field length that means "variable" (RFC 7011 §7).
const VARIABLE: u16 = u16::MAX;

/// One field this crate reads: what it is, where it sits, how the parser types it.
#[derive(Debug, Clone, Copy)]
struct Read {
    field: F,
    offset: usize,
    len: u16,
    ty: FieldDataType,
    /// How to read it without the parser's value, for the usual types and lengths.
    plain: Option<Plainly>,
}

/// The parser's types whose value this crate reads from the bytes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plainly {
    /// An unsigned number of 1 to 4 or 8 bytes.
    Unsigned,
    /// The protocol number, one byte.
    Protocol,
    /// A time in milliseconds, 2, 4 or 8 bytes.
    Millis,
    /// A time in seconds, 2, 4 or 8 bytes.
    Seconds,
    /// An IPv4 address, 4 bytes.
    V4,
    /// An IPv6 address, 16 bytes.
    V6,
}

impl Plainly {
    fn of(field: F, ty: FieldDataType, len: u16) -> Option<Plainly> {
        Some(match (ty, len) {
            (FieldDataType::UnsignedDataNumber, 1..=4 | 8) => Plainly::Unsigned,
            (FieldDataType::ProtocolType, 1) if field == F::Proto => Plainly::Protocol,
            (FieldDataType::DurationMillis, 2 | 4 | 8) => Plainly::Millis,
            (FieldDataType::DurationSeconds, 2 | 4 | 8) => Plainly::Seconds,
            (FieldDataType::Ip4Addr, 4) => Plainly::V4,
            (FieldDataType::Ip6Addr, 16) => Plainly::V6,
            _ => return None,
        })
    }

    /// The value of `bytes` (as long as the field), in the forms the parser's value gives.
    fn read(self, bytes: &[u8]) -> Plain {
        let n = match *bytes {
            [a] => u64::from(a),
            [a, b] => u64::from(u16::from_be_bytes([a, b])),
            [a, b, c, d] => u64::from(u32::from_be_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => u64::from_be_bytes([a, b, c, d, e, f, g, h]),
            _ => bytes.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)),
        };
        match self {
            Plainly::Unsigned => Plain {
                number: Some(n),
                byte: u8::try_from(n).ok(),
                short: u16::try_from(n).ok(),
                addr: None,
            },
            Plainly::Protocol => Plain {
                byte: bytes.first().copied(),
                ..Plain::default()
            },
            Plainly::Millis => Plain {
                number: Some(n),
                ..Plain::default()
            },
            Plainly::Seconds => Plain {
                number: n.checked_mul(1000),
                ..Plain::default()
            },
            Plainly::V4 => Plain {
                addr: <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
                ..Plain::default()
            },
            Plainly::V6 => Plain {
                addr: <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
                ..Plain::default()
            },
        }
    }
}

/// Where the fields this crate reads sit in a record of one template.
#[derive(Debug, Clone)]
struct Layout {
    /// A hash of the template's fields and lengths, in order, to check the parser's decoded
    /// records against (kept instead of the fields: a template may have 512).
    fingerprint: u64,
    record_len: usize,
    reads: Vec<Read>,
    /// The scope's epoch in which the parser decoded a record of this template, field for
    /// field as here.
    confirmed: Option<u64>,
}

/// The hash of a sequence of (field, length).
fn fingerprint(fields: impl Iterator<Item = (IPFixField, usize)>) -> u64 {
    let mut h = foldhash::quality::FixedState::with_seed(0x1bf1).build_hasher();
    let mut n = 0usize;
    for f in fields {
        f.hash(&mut h);
        n += 1;
    }
    n.hash(&mut h);
    h.finish()
}

impl Layout {
    /// The layout of a template of fixed-length fields (`None` for a variable-length one, or
    /// one that repeats the fields this crate reads more than [`MAX_READS`] times in all).
    fn of(fields: &[TemplateField]) -> Option<Layout> {
        let registry = EnterpriseFieldRegistry::default();
        let mut offset = 0usize;
        let mut reads = Vec::new();
        for tf in fields {
            if tf.field_length == VARIABLE || tf.field_length == 0 {
                return None;
            }
            if let Some(field) = ipfix_field(&tf.field_type) {
                if reads.len() == MAX_READS {
                    return None;
                }
                let ty = tf.field_type.to_field_data_type(&registry);
                reads.push(Read {
                    field,
                    offset,
                    len: tf.field_length,
                    ty,
                    plain: Plainly::of(field, ty, tf.field_length),
                });
            }
            offset += usize::from(tf.field_length);
        }
        let fingerprint = fingerprint(
            fields
                .iter()
                .map(|f| (f.field_type, usize::from(f.field_length))),
        );
        (offset > 0).then_some(Layout {
            fingerprint,
            record_len: offset,
            reads,
            confirmed: None,
        })
    }

    /// Whether the parser's record has this layout's fields, each as long as here.
    fn matches(&self, record: &[IPFixFieldPair]) -> bool {
        fingerprint(record.iter().map(|(f, v)| (*f, v.byte_len()))) == self.fingerprint
    }

    /// One record's fields, as [`Flat::of`] takes them from the parser's record.
    fn flat(&self, record: &[u8]) -> Flat {
        let mut flat = Flat::default();
        for r in &self.reads {
            let Some(bytes) = record.get(r.offset..r.offset + usize::from(r.len)) else {
                continue;
            };
            match r.plain {
                Some(p) => flat.set_plain(r.field, p.read(bytes)),
                None => {
                    if let Ok((_, v)) = FieldValue::from_field_type(bytes, r.ty, r.len) {
                        flat.set(r.field, &v);
                    }
                }
            }
        }
        flat
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Scope {
    exporter: SocketAddr,
    domain: u32,
}

/// An IPFIX message every set of which is data of a confirmed layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    /// The header's export time, seconds since 1970.
    pub export_s: u32,
    /// The header's observation domain.
    pub domain: u32,
}

/// The layouts of every exporter's templates, bounded.
#[derive(Debug, Default)]
pub(crate) struct Layouts {
    map: foldhash::HashMap<(Scope, u16), Layout>,
    /// Per scope with layouts: bumped by every message that may have changed the parser's
    /// templates; a layout confirmed in an earlier epoch is not used.
    epochs: foldhash::HashMap<Scope, u64>,
    /// Messages read here instead of by the parser.
    pub read_here: u64,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Whether the sets from `at` to `end` are data sets, each at least a set header long.
fn only_data_sets(dg: &[u8], mut at: usize, end: usize) -> bool {
    while at < end {
        match (be16(dg, at), be16(dg, at + 2).map(usize::from)) {
            (Some(id), Some(len)) if id >= FIRST_DATA_SET_ID && len >= SET_HEADER => at += len,
            _ => return false,
        }
    }
    true
}

impl Layouts {
    /// A template the parser returned (it took it): learned or redefined, not yet confirmed.
    pub(crate) fn template(&mut self, exporter: SocketAddr, domain: u32, t: &Template) {
        let scope = Scope { exporter, domain };
        let key = (scope, t.template_id);
        let room = (self.map.len() < MAX_LAYOUTS || self.map.contains_key(&key))
            && (self.epochs.len() < MAX_LAYOUTS || self.epochs.contains_key(&scope));
        match Layout::of(&t.fields) {
            Some(l) if room => {
                self.epochs.entry(scope).or_insert(0);
                self.map.insert(key, l);
            }
            _ => {
                self.map.remove(&key);
            }
        }
    }

    /// Before the parser reads `dg`: where a message of it carries anything but data sets,
    /// the parser may learn, replace, withdraw or refuse templates of that message's exporter
    /// and domain, so their layouts wait for its confirmation again. Each message of the
    /// datagram is looked at (the parser reads every one).
    pub(crate) fn before_parser(&mut self, exporter: SocketAddr, dg: &[u8]) {
        let mut at = 0;
        while let (Some(len), Some(domain)) = (be16(dg, at + 2), be32(dg, at + 12)) {
            let len = usize::from(len);
            let end = (at + len).min(dg.len());
            if !only_data_sets(dg, at + MESSAGE_HEADER, end) {
                if let Some(epoch) = self.epochs.get_mut(&Scope { exporter, domain }) {
                    *epoch += 1;
                }
            }
            if len < MESSAGE_HEADER {
                return;
            }
            at += len;
        }
    }

    /// An options template took this id: its data is not flow records.
    pub(crate) fn forget(&mut self, exporter: SocketAddr, domain: u32, id: u16) {
        self.map.remove(&(Scope { exporter, domain }, id));
    }

    /// The parser decoded `first` as the first record of a data set with this id.
    pub(crate) fn confirm(
        &mut self,
        exporter: SocketAddr,
        domain: u32,
        id: u16,
        first: &[IPFixFieldPair],
    ) {
        let scope = Scope { exporter, domain };
        let (Some(&epoch), Some(l)) = (self.epochs.get(&scope), self.map.get_mut(&(scope, id)))
        else {
            return;
        };
        if l.confirmed != Some(epoch) && l.matches(first) {
            l.confirmed = Some(epoch);
        }
    }

    /// Layouts held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The message's header if it is one IPFIX message, exactly the datagram, whose every set
    /// is data of a confirmed layout.
    pub(crate) fn known(&self, exporter: SocketAddr, dg: &[u8]) -> Option<Known> {
        if be16(dg, 0)? != 10 || usize::from(be16(dg, 2)?) != dg.len() {
            return None;
        }
        let known = Known {
            export_s: be32(dg, 4)?,
            domain: be32(dg, 12)?,
        };
        let scope = Scope {
            exporter,
            domain: known.domain,
        };
        let epoch = *self.epochs.get(&scope)?;
        let mut at = MESSAGE_HEADER;
        if at >= dg.len() {
            return None;
        }
        while at < dg.len() {
            let id = be16(dg, at)?;
            let len = usize::from(be16(dg, at + 2)?);
            if id < FIRST_DATA_SET_ID || len < SET_HEADER || at + len > dg.len() {
                return None;
            }
            if self.map.get(&(scope, id))?.confirmed != Some(epoch) {
                return None;
            }
            at += len;
        }
        Some(known)
    }

    /// Every record of a message [`Layouts::known`] accepted, in order.
    pub(crate) fn records(
        &self,
        exporter: SocketAddr,
        known: Known,
        dg: &[u8],
        mut each: impl FnMut(&Flat),
    ) {
        let scope = Scope {
            exporter,
            domain: known.domain,
        };
        let mut at = MESSAGE_HEADER;
        while let (Some(id), Some(len)) = (be16(dg, at), be16(dg, at + 2)) {
            let len = usize::from(len);
            let (Some(body), Some(layout)) = (
                dg.get(at + SET_HEADER..at + len),
                self.map.get(&(scope, id)),
            ) else {
                return;
            };
            for record in body
                .chunks_exact(layout.record_len)
                .take(DEFAULT_MAX_RECORDS_PER_FLOWSET)
            {
                each(&layout.flat(record));
            }
            at += len.max(SET_HEADER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netflow_parser::protocol::ProtocolTypes;

    #[test]
    fn a_protocol_byte_reads_as_the_parsers_protocol_value() {
        for b in 0..=u8::MAX {
            let parsed = FieldValue::ProtocolType(ProtocolTypes::from(b));
            let plain = Plainly::Protocol.read(&[b]);
            assert_eq!(plain.byte, parsed.as_u8(), "{b}");
        }
    }
}
