//! Flow accuracy against an independent tool: for every capture of the shared corpus that has a
//! tshark conversation table (`truth/*.conv.txt`, Wireshark 4.0.17 `-z conv,tcp -z conv,udp`),
//! burstwatch's flow records summed per unordered 5-tuple must give tshark's frame count for
//! every TCP and UDP conversation, and burstwatch must report no TCP/UDP conversation tshark does
//! not list.
//!
//! Where the two tools count by different rules, the rule is stated here and the difference is
//! checked exactly; nothing is skipped:
//!
//! * **Link types burstwatch does not decode** (802.11 radiotap, PPP, Frame Relay, ...): every
//!   frame must be counted as `unsupported_link_type` and no flow reported.
//! * **IP reassembly**: tshark reassembles fragmented datagrams and counts each once; burstwatch
//!   counts every frame and reports the later fragments it attributed as `fragments_fwd/rev`.
//!   So tshark's count must equal burstwatch's packets minus those fragments.
//! * **Tunnel outer conversations**: tshark lists the outer UDP conversation of a UDP tunnel
//!   (VXLAN, Geneve, GTP-U, Teredo) beside the inner one; burstwatch keys the flow on the inner
//!   header and records the outer endpoints in `tunnel`. Such a tshark conversation must equal
//!   the packets of burstwatch flows whose tunnel layers carry that outer 5-tuple.
//! * **Files listed in [`KNOWN_DIFFERENCES`]**, each with the reason the tools disagree; for
//!   those the test checks that the difference is still there (so a fix shows up).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burstwatch_tests::{conv_key, corpus, json_lines, manifest, normalize_ip, parse_tshark_conv, run, ConvKey};

/// Files where burstwatch and tshark 4.0 legitimately disagree, with the reason.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[];

#[derive(Default)]
struct Ours {
    /// Packets per conversation.
    packets: BTreeMap<ConvKey, u64>,
    /// Later fragments per conversation.
    fragments: BTreeMap<ConvKey, u64>,
    /// Packets per outer tunnel 5-tuple (UDP tunnels).
    outer: BTreeMap<ConvKey, u64>,
    stats: serde_json::Value,
}

fn analyze(file: &Path, dir: &Path) -> Ours {
    let flows = dir.join("flows.jsonl");
    let stats = dir.join("stats.json");
    let out = run(&[
        "analyze",
        "--quiet",
        "--flows",
        flows.to_str().expect("utf-8 path"),
        "--stats",
        stats.to_str().expect("utf-8 path"),
        file.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}: burstwatch crashed: {:?}\n{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ours = Ours {
        stats: serde_json::from_slice(&std::fs::read(&stats).expect("stats written")).expect("stats JSON"),
        ..Ours::default()
    };
    for rec in json_lines(&std::fs::read(&flows).expect("flows written")) {
        let proto = rec["proto"].as_str().unwrap_or("").to_string();
        let n = rec["packets_fwd"].as_u64().unwrap_or(0) + rec["packets_rev"].as_u64().unwrap_or(0);
        if let Some(layers) = rec["tunnel"].as_array() {
            for l in layers {
                let (sp, dp) = (l["outer_sport"].as_u64(), l["outer_dport"].as_u64());
                if let (Some(sp), Some(dp)) = (sp, dp) {
                    let a = (normalize_ip(l["outer_src"].as_str().unwrap_or("")), sp as u16);
                    let b = (normalize_ip(l["outer_dst"].as_str().unwrap_or("")), dp as u16);
                    *ours.outer.entry(conv_key("udp", a, b)).or_insert(0) += n;
                }
            }
        }
        if proto != "tcp" && proto != "udp" {
            continue;
        }
        let a = (normalize_ip(rec["src"].as_str().unwrap_or("")), rec["sport"].as_u64().unwrap_or(0) as u16);
        let b = (normalize_ip(rec["dst"].as_str().unwrap_or("")), rec["dport"].as_u64().unwrap_or(0) as u16);
        let key = conv_key(&proto, a, b);
        *ours.packets.entry(key.clone()).or_insert(0) += n;
        let f = rec["fragments_fwd"].as_u64().unwrap_or(0) + rec["fragments_rev"].as_u64().unwrap_or(0);
        *ours.fragments.entry(key).or_insert(0) += f;
    }
    ours
}

/// Compare one file; `Ok(rule)` names the rule that made the counts agree.
fn compare(theirs: &BTreeMap<ConvKey, u64>, ours: &Ours) -> Result<&'static str, String> {
    let frames = ours.stats["packets"].as_u64().unwrap_or(0);
    let unsupported = ours.stats["decode_errors"]["unsupported_link_type"].as_u64().unwrap_or(0);
    if frames > 0 && unsupported == frames {
        return if ours.packets.is_empty() {
            Ok("unsupported link type: every frame counted as such, no flow")
        } else {
            Err("flows reported for an unsupported link type".into())
        };
    }
    let mut rule = "exact";
    let mut problems = Vec::new();
    for (key, &n) in theirs {
        match ours.packets.get(key) {
            Some(&mine) if mine == n => {}
            Some(&mine) if mine - ours.fragments.get(key).copied().unwrap_or(0) == n => {
                rule = "exact after IP reassembly rule";
            }
            Some(&mine) => problems.push(format!("{key:?}: tshark {n}, burstwatch {mine}")),
            None => match ours.outer.get(key) {
                Some(&outer) if outer == n => rule = "exact with tunnel outer conversations",
                Some(&outer) => problems.push(format!("{key:?} (tunnel outer): tshark {n}, burstwatch {outer}")),
                None => problems.push(format!("{key:?}: tshark {n}, burstwatch none")),
            },
        }
    }
    let listed: BTreeSet<&ConvKey> = theirs.keys().collect();
    for (key, n) in &ours.packets {
        if !listed.contains(key) {
            problems.push(format!("{key:?}: burstwatch {n}, tshark none"));
        }
    }
    if problems.is_empty() {
        Ok(rule)
    } else {
        Err(problems.join("\n    "))
    }
}

#[test]
fn flow_counts_match_tshark_on_every_corpus_capture() {
    let root = corpus();
    let tmp = tempfile::tempdir().expect("tempdir");
    let known: BTreeMap<&str, &str> = KNOWN_DIFFERENCES.iter().copied().collect();
    let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for row in manifest() {
        let truth = root.join("truth").join(format!("{}.conv.txt", row.path.replace('/', "__")));
        let Ok(text) = std::fs::read_to_string(&truth) else { continue };
        checked += 1;
        let theirs = parse_tshark_conv(&text);
        let ours = analyze(&root.join(&row.path), tmp.path());
        match (compare(&theirs, &ours), known.get(row.path.as_str())) {
            (Ok(rule), None) => *by_rule.entry(rule).or_insert(0) += 1,
            (Err(_), Some(_)) => *by_rule.entry("known difference (listed with reason)").or_insert(0) += 1,
            (Ok(_), Some(_)) => failures.push(format!("{}: now agrees with tshark: remove it from KNOWN_DIFFERENCES", row.path)),
            (Err(e), None) => failures.push(format!("{} [{}]:\n    {e}", row.path, row.link_type)),
        }
    }
    eprintln!("checked {checked} captures against tshark:");
    for (rule, n) in &by_rule {
        eprintln!("  {n:5}  {rule}");
    }
    assert!(checked > 1000, "expected the full corpus, found {checked} truth tables");
    assert!(failures.is_empty(), "{} captures disagree with tshark:\n{}", failures.len(), failures.join("\n"));
}
