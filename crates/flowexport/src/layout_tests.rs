//! IPFIX data read by layout against the parser's reading: the same bins and counters, on
//! random templates and on the simulator's export.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;

use burstwatch_sim::export::encode::{self, Header, Record};
use proptest::prelude::*;

use super::*;

const T0: i64 = 1_767_225_600 * NS_PER_SEC;
const REVERSE_PEN: u32 = 29_305;

/// One field of a template: information element, enterprise number, length.
#[derive(Debug, Clone, Copy)]
struct Spec {
    ie: u16,
    pen: Option<u32>,
    len: u16,
}

/// Fields this crate reads, with the lengths an exporter may give them (the usual one first,
/// then reduced-size encodings and lengths the parser types otherwise), and fields it skips.
const MENU: &[(u16, Option<u32>, &[u16])] = &[
    (1, None, &[8, 4, 2, 1, 3, 5]),
    (2, None, &[8, 4, 2]),
    (4, None, &[1, 2]),
    (7, None, &[2, 1, 4]),
    (11, None, &[2, 1]),
    (8, None, &[4, 3]),
    (12, None, &[4]),
    (27, None, &[16]),
    (28, None, &[16, 8]),
    (22, None, &[4, 8]),
    (21, None, &[4]),
    (150, None, &[4, 8]),
    (151, None, &[4]),
    (152, None, &[8, 4]),
    (153, None, &[8]),
    (154, None, &[8]),
    (155, None, &[8, 4]),
    (156, None, &[8]),
    (157, None, &[8]),
    (158, None, &[4]),
    (159, None, &[4]),
    (160, None, &[8]),
    (34, None, &[4, 2]),
    (50, None, &[4]),
    (305, None, &[4]),
    (306, None, &[4]),
    (1, Some(REVERSE_PEN), &[8, 4]),
    (2, Some(REVERSE_PEN), &[8, 4]),
    // Skipped by this crate: flags, interfaces, ToS, end reason, an application id, a
    // string, another enterprise's field.
    (6, None, &[1, 2]),
    (10, None, &[4, 2]),
    (5, None, &[1]),
    (136, None, &[1]),
    (95, None, &[4, 1]),
    (82, None, &[8, 3]),
    (7, Some(9), &[6, 1]),
];

/// One exporter step: templates (id → fields; an empty list withdraws), or data records of a
/// template id in the layout last announced for it.
#[derive(Debug, Clone)]
enum Step {
    Templates(Vec<(u16, Vec<Spec>)>),
    Data(Vec<(u16, usize)>),
    Options(u16),
}

fn template_set(templates: &[(u16, Vec<Spec>)], out: &mut Vec<u8>) {
    let at = out.len();
    out.extend_from_slice(&[0, 2, 0, 0]);
    for (id, fields) in templates {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&(fields.len() as u16).to_be_bytes());
        for f in fields {
            let ie = f.ie | if f.pen.is_some() { 0x8000 } else { 0 };
            out.extend_from_slice(&ie.to_be_bytes());
            out.extend_from_slice(&f.len.to_be_bytes());
            if let Some(pen) = f.pen {
                out.extend_from_slice(&pen.to_be_bytes());
            }
        }
    }
    let len = (out.len() - at) as u16;
    out[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// An options template of id `id` with a scope of one field and a sampling interval, and a
/// record of it (rate 7).
fn options_sets(id: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 3, 0, 18]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 2, 0, 1, 0, 149, 0, 4, 0, 34, 0, 4]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0, 12, 0, 0, 0, 1, 0, 0, 0, 7]);
}

/// Field bytes: plausible for the fields that place a record (so most records count), random
/// elsewhere.
fn value(f: &Spec, rng: &mut u64, export_s: u32) -> Vec<u8> {
    let mut r = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        *rng
    };
    let n = usize::from(f.len);
    let x = r();
    let num = |v: u64| v.to_be_bytes()[8usize.saturating_sub(n)..].to_vec();
    let mut bytes = match (f.pen, f.ie, n) {
        (None, 150 | 151, 4) => num(u64::from(export_s) - x % 30),
        (None, 152 | 153, 8) => num(u64::from(export_s) * 1000 - x % 30_000),
        (None, 158 | 159, 4) => num(x % 30_000_000),
        (None, 22 | 21, 4) => num(3_600_000 - x % 30_000),
        (None, 160, 8) => num((u64::from(export_s) - 3_600) * 1000),
        (None, 34 | 50 | 305 | 306, _) => num(x % 4),
        (None, 8 | 12, 4) => vec![10, 0, (x >> 8) as u8 % 4, x as u8 % 8],
        _ => (0..n).map(|i| (x >> (8 * (i % 8))) as u8).collect(),
    };
    bytes.resize(n, 0);
    bytes
}

/// The datagrams of `steps`, one IPFIX message each.
fn messages(steps: &[Step], seed: u64) -> Vec<Vec<u8>> {
    let mut rng = seed | 1;
    let mut layouts: HashMap<u16, Vec<Spec>> = HashMap::new();
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let export_s = (T0 / NS_PER_SEC) as u32 + i as u32;
        let mut m = vec![0, 10, 0, 0];
        m.extend_from_slice(&export_s.to_be_bytes());
        m.extend_from_slice(&(i as u32).to_be_bytes());
        m.extend_from_slice(&1u32.to_be_bytes());
        match step {
            Step::Templates(ts) => {
                template_set(ts, &mut m);
                for (id, fields) in ts {
                    if !fields.is_empty() {
                        layouts.insert(*id, fields.clone());
                    }
                }
            }
            Step::Options(id) => options_sets(*id, &mut m),
            Step::Data(sets) => {
                for (id, n) in sets {
                    let Some(fields) = layouts.get(id) else {
                        continue;
                    };
                    let at = m.len();
                    m.extend_from_slice(&id.to_be_bytes());
                    m.extend_from_slice(&[0, 0]);
                    for _ in 0..*n {
                        for f in fields {
                            m.extend_from_slice(&value(f, &mut rng, export_s));
                        }
                    }
                    // Padding shorter than a record.
                    m.extend_from_slice(&[0; 3][..(rng % 4) as usize % 4]);
                    let len = (m.len() - at) as u16;
                    m[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        out.push(m);
    }
    out
}

fn exporter() -> SocketAddr {
    "192.0.2.250:50000".parse().unwrap()
}

/// Both readings of the same datagrams: every exporter counter after each datagram, the bins
/// at the end. Returns the messages read by layout.
fn compare(datagrams: &[Vec<u8>]) -> u64 {
    let cfg = || Config {
        max_span_s: 120,
        ..Config::default()
    };
    let mut fast = Collector::new(cfg()).unwrap();
    let mut slow = Collector::new(cfg()).unwrap();
    slow.read_by_layout = false;
    for (i, d) in datagrams.iter().enumerate() {
        let at = T0 + i as i64 * NS_PER_SEC;
        fast.push(at, exporter(), d);
        slow.push(at, exporter(), d);
        assert_eq!(fast.total(), slow.total(), "after datagram {i}");
    }
    assert_eq!(slow.layouts.read_here, 0);
    let drain = |c: &mut Collector| {
        c.finish();
        std::iter::from_fn(|| c.pop()).collect::<Vec<_>>()
    };
    assert_eq!(drain(&mut fast), drain(&mut slow));
    assert_eq!(fast.bin_stats(), slow.bin_stats());
    fast.layouts.read_here
}

fn spec(ie: u16, len: u16) -> Spec {
    Spec { ie, pen: None, len }
}

/// The usual IPv4 template: addresses, ports, protocol, bytes, packets, millisecond times.
fn v4_template() -> Vec<Spec> {
    [
        (8, 4),
        (12, 4),
        (7, 2),
        (11, 2),
        (4, 1),
        (1, 8),
        (2, 8),
        (152, 8),
        (153, 8),
    ]
    .into_iter()
    .map(|(ie, len)| spec(ie, len))
    .collect()
}

#[test]
fn data_is_read_by_layout_after_the_parser_confirmed_it() {
    let t = v4_template();
    let steps = [
        Step::Templates(vec![(256, t.clone())]),
        Step::Data(vec![(256, 10)]),
        Step::Data(vec![(256, 20), (256, 5)]),
        Step::Data(vec![(256, 1)]),
    ];
    let d = messages(&steps, 7);
    // The first data message confirms the layout; the next two are read by it.
    assert_eq!(compare(&d), 2);
    let mut c = Collector::new(Config::default()).unwrap();
    for (i, m) in d.iter().enumerate() {
        c.push(T0 + i as i64 * NS_PER_SEC, exporter(), m);
    }
    assert_eq!((c.layouts.len(), c.layouts.read_here), (1, 2));
    assert_eq!(c.total().records, 36);
}

#[test]
fn a_set_gives_at_most_the_parsers_records() {
    let steps = [
        Step::Templates(vec![(256, v4_template())]),
        Step::Data(vec![(256, 1)]),
        Step::Data(vec![(256, 1100)]),
    ];
    assert_eq!(compare(&messages(&steps, 5)), 1);
}

#[test]
fn a_template_naming_too_many_read_fields_is_left_to_the_parser() {
    let mut t = v4_template();
    t.extend(std::iter::repeat_n(spec(1, 4), 40));
    let steps = [
        Step::Templates(vec![(256, t)]),
        Step::Data(vec![(256, 2)]),
        Step::Data(vec![(256, 2)]),
    ];
    assert_eq!(compare(&messages(&steps, 9)), 0);
}

/// A datagram of two IPFIX messages, the second withdrawing domain 2's template: whether the
/// parser reads that second message or not, domain 2's layout waits for its confirmation
/// again, so its next data goes to the parser (and both readings agree).
#[test]
fn every_message_of_a_datagram_is_looked_at_before_the_parser_reads_it() {
    let in_domain = |steps: &[Step], domain: u32| {
        let mut d = messages(steps, 13);
        for m in &mut d {
            m[12..16].copy_from_slice(&domain.to_be_bytes());
        }
        d
    };
    let confirm = [
        Step::Templates(vec![(256, v4_template())]),
        Step::Data(vec![(256, 3)]),
    ];
    let mut d = in_domain(&confirm, 1);
    d.extend(in_domain(&confirm, 2));
    // One datagram: data of domain 1, then domain 2 withdrawing its template.
    let data = in_domain(&[Step::Data(vec![(256, 2)])], 1).remove(0);
    let withdraw = in_domain(&[Step::Templates(vec![(256, vec![])])], 2).remove(0);
    d.push([data, withdraw].concat());
    // Domain 2's next data is the parser's, not read by layout.
    let mut late = messages(
        &[
            Step::Templates(vec![(256, v4_template())]),
            Step::Data(vec![(256, 4)]),
        ],
        17,
    );
    let mut after = late.remove(1);
    after[12..16].copy_from_slice(&2u32.to_be_bytes());
    d.push(after);
    assert_eq!(compare(&d), 0);
}

#[test]
fn withdrawn_redefined_and_options_templates_go_back_to_the_parser() {
    let t = v4_template();
    let mut wider = t.clone();
    wider.insert(2, spec(10, 4));
    let steps = [
        Step::Templates(vec![(256, t.clone()), (257, t.clone())]),
        Step::Data(vec![(256, 3), (257, 3)]),
        Step::Data(vec![(256, 3), (257, 3)]),
        // 256 withdrawn: its data is now the parser's template miss, never read by layout.
        Step::Templates(vec![(256, vec![])]),
        Step::Data(vec![(256, 4)]),
        Step::Data(vec![(257, 4)]),
        Step::Data(vec![(257, 4)]),
        // 257 redefined, wider: the old layout must not read the new records.
        Step::Templates(vec![(257, wider)]),
        Step::Data(vec![(257, 2)]),
        Step::Data(vec![(257, 2)]),
        // 257 becomes an options template.
        Step::Options(257),
        Step::Data(vec![(257, 2)]),
        Step::Data(vec![(257, 2)]),
    ];
    let n = compare(&messages(&steps, 11));
    // Read by layout: the third message, the seventh (257 after the withdrawal of 256 and
    // one confirming message) and the tenth.
    assert_eq!(n, 3);
}

#[test]
fn the_simulators_export_is_read_by_layout_with_the_same_result() {
    let mut recs = Vec::new();
    for i in 0..400u32 {
        let s = i64::from(i % 40);
        recs.push(Record {
            src: std::net::IpAddr::from([10, 0, (i / 200) as u8, (i % 200) as u8]),
            dst: std::net::IpAddr::from([198, 19, 0, (i % 7) as u8]),
            proto: 6,
            sport: 40_000 + i as u16,
            dport: 443,
            bytes: 1_000 + u64::from(i) * 37,
            packets: 1 + u64::from(i) / 3,
            start_ns: T0 + s * NS_PER_SEC,
            end_ns: T0 + (s + i64::from(i % 11)) * NS_PER_SEC,
        });
    }
    let mut d = Vec::new();
    for (k, chunk) in recs.chunks(20).enumerate() {
        let h = Header {
            export_ns: T0 + (50 + k as i64) * NS_PER_SEC,
            boot_ns: T0 - 3_600 * NS_PER_SEC,
            sequence: k as u32,
            domain: 1,
            sampling: 1,
        };
        let mut m = Vec::new();
        encode::ipfix(&h, chunk, k % 8 == 0, &mut m);
        d.push(m);
    }
    // Every eighth message carries the templates and data that confirms the layout; the
    // parser reads those three, the layouts the other 17.
    assert_eq!(compare(&d), 17);
}

#[test]
fn every_field_and_length_of_the_menu_is_read_by_layout() {
    for &(ie, pen, lens) in MENU {
        for &len in lens {
            let mut t = v4_template();
            t.push(Spec { ie, pen, len });
            let steps = [
                Step::Templates(vec![(300, t)]),
                Step::Data(vec![(300, 4)]),
                Step::Data(vec![(300, 4)]),
                Step::Data(vec![(300, 4)]),
            ];
            assert_eq!(compare(&messages(&steps, 3)), 2, "{ie} {pen:?} {len}");
        }
    }
}

fn template_strategy() -> impl Strategy<Value = Vec<Spec>> {
    proptest::collection::vec((0..MENU.len(), 0usize..6), 1..16).prop_map(|picks| {
        picks
            .into_iter()
            .map(|(i, l)| {
                let (ie, pen, lens) = MENU[i];
                Spec {
                    ie,
                    pen,
                    len: lens[l % lens.len()],
                }
            })
            .collect()
    })
}

fn step_strategy() -> impl Strategy<Value = Step> {
    let ids = || 256u16..260;
    prop_oneof![
        2 => proptest::collection::vec((ids(), template_strategy()), 1..3).prop_map(Step::Templates),
        1 => ids().prop_map(|id| Step::Templates(vec![(id, vec![])])),
        1 => ids().prop_map(Step::Options),
        6 => proptest::collection::vec((ids(), 0usize..30), 1..4).prop_map(Step::Data),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random templates (every field this crate reads, in usual and unusual lengths, among
    /// fields it skips), withdrawn, redefined and taken by options templates, with random
    /// data: reading by layout gives the parser's bins and counters.
    #[test]
    fn reading_by_layout_equals_the_parser(
        steps in proptest::collection::vec(step_strategy(), 1..24),
        seed in any::<u64>(),
    ) {
        compare(&messages(&steps, seed));
    }

    /// A confirmed layout meets damaged messages: cut, with set lengths changed, or with
    /// bytes flipped. Both readings still agree.
    #[test]
    fn damaged_messages_after_a_confirmed_layout(
        cut in 0usize..400, flip in 0usize..400, byte in any::<u8>(), seed in any::<u64>(),
    ) {
        let steps = [
            Step::Templates(vec![(256, v4_template())]),
            Step::Data(vec![(256, 3)]),
            Step::Data(vec![(256, 3), (256, 2)]),
        ];
        let mut d = messages(&steps, seed);
        let good = d[2].clone();
        let mut cut_m = good.clone();
        cut_m.truncate(cut.min(good.len()));
        let mut flip_m = good.clone();
        let at = flip % flip_m.len();
        flip_m[at] ^= byte;
        d.extend([cut_m, flip_m, good]);
        compare(&d);
    }
}
