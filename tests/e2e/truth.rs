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
//! * **Orphan IP fragments**: later fragments whose first fragment is not in the capture carry
//!   no ports; burstwatch counts them in a port-0 flow (all its packets are `fragments`), tshark
//!   cannot reassemble them and lists nothing.
//! * **Files listed in [`KNOWN_DIFFERENCES`]**, each with the reason the tools disagree; for
//!   those the test checks that the difference is still there (so a fix shows up).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burstwatch_tests::{
    conv_key, corpus, json_lines, manifest, normalize_ip, parse_tshark_conv, run, ConvKey,
};

/// Files where burstwatch and tshark 4.0 legitimately disagree, with the reason.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "encap/doc__advanced__devel__plugins__connkey-vxlan-fivetuple-plugin-src__Traces__vxlan-overlapping-http-get.pcap",
        "two VXLAN segments carry overlapping inner 5-tuples; burstwatch merges them into one inner flow (it keys on the innermost header only), tshark splits the outer conversation",
    ),
    (
        "encap/vxlan.pcap",
        "the outer VXLAN source port changes within one inner flow; burstwatch keeps the first outer tuple per direction, so the per-outer-port split of tshark cannot be rebuilt from records",
    ),
    (
        "encap/tunnels__geneve.pcap",
        "the outer Geneve source port changes within one inner flow (see encap/vxlan.pcap); tshark also lists an inner UDP conversation with port 0",
    ),
    (
        "encap/teredo.pcap",
        "Teredo bubbles and relayed packets: the outer UDP tuple changes within one inner IPv6 flow (see encap/vxlan.pcap)",
    ),
    (
        "encap/tunnels__gtp__gtp8_teredo.pcap",
        "Teredo over GTP: the outer Teredo server address changes within one inner flow",
    ),
    (
        "encap/erspan.pcap",
        "fragmented GRE/ERSPAN packets: burstwatch does not reassemble IP, so a fragmented tunnel packet counts in its outer GRE flow; tshark reassembles and counts it in the inner TCP conversation",
    ),
    (
        "encap/tunnels__gtp__gtp1_gn_normal_incl_fragmentation.pcap",
        "fragmented GTP-U packets: counted in the outer UDP 2152 flow by burstwatch (no reassembly), in the inner TCP conversation by tshark",
    ),
    (
        "encap/tunnels__gtp__gtp2_different_udp_port.pcap",
        "fragmented GTP-U packets (see gtp1_gn_normal_incl_fragmentation)",
    ),
    (
        "encap/tunnels__gtp__gtp9_unknown_or_too_short_payload.pcap",
        "fragmented GTP-U packets (see gtp1_gn_normal_incl_fragmentation)",
    ),
    (
        "encap/tunnels__gtp__gtp_ext_header.pcap",
        "a fragmented GTP-U packet with an extension header (see gtp1_gn_normal_incl_fragmentation)",
    ),
    (
        "encap/pbb-recursive-frames.pcapng",
        "802.1ah frames nested deeper than burstwatch's cap of 8 encapsulation layers: counted as too_deep",
    ),
    (
        "robustness/libpcap/filter__ipv6_ext_headers.pcap",
        "more IPv6 extension headers than burstwatch's cap of 16: counted as too_deep",
    ),
    (
        "encap/tunnels__ayiya-large-identity.pcap",
        "AYIYA (UDP 5072) tunnels are not decoded: counted in the outer UDP flow",
    ),
    (
        "encap/tunnels__ayiya3.pcap",
        "AYIYA (UDP 5072) tunnels are not decoded: counted in the outer UDP flow",
    ),
    (
        "encap/tunnels__gre-aruba.pcap",
        "Aruba GRE (0x8200) carries 802.11 frames, which burstwatch does not decode: counted in the outer GRE flow",
    ),
    (
        "encap/tunnels__gre-aruba-amsdu.pcap",
        "Aruba GRE carrying 802.11 A-MSDUs (see gre-aruba)",
    ),
    (
        "traffic/capwap.pcap",
        "CAPWAP data (UDP 5247) carries 802.11 frames, which burstwatch does not decode: counted in the outer UDP flow",
    ),
    (
        "robustness/tcpdump/wccp_redirect_gre.pcap",
        "WCCP redirect GRE (0x883E) is not decoded: counted in the outer GRE flow",
    ),
    (
        "robustness/tcpdump/macsec-short-longer.pcap",
        "MACsec (802.1AE) frames are not decoded (their payload is normally encrypted): counted as not IP",
    ),
    (
        "robustness/tcpdump/macsec-short-shorter.pcap",
        "MACsec frames are not decoded (see macsec-short-longer)",
    ),
    (
        "robustness/tcpdump/macsec-short-valid.pcap",
        "MACsec frames are not decoded (see macsec-short-longer)",
    ),
    (
        "robustness/tcpdump/nsh.pcap",
        "Network Service Header (0x894F) is not decoded: counted as not IP",
    ),
    (
        "robustness/tcpdump/nsh-over-vxlan-gpe.pcap",
        "VXLAN-GPE (UDP 4790) with NSH is not decoded: counted in the outer UDP flow",
    ),
    (
        "robustness/tcpdump/of13_ericsson.pcapng",
        "packets quoted inside OpenFlow packet-in messages are dissected by tshark as conversations of their own; burstwatch counts the OpenFlow TCP connection",
    ),
    (
        "robustness/tcpdump/pim-packet-assortment.pcap",
        "PIM Register messages carry multicast data packets, dissected by tshark as conversations; burstwatch counts the PIM packet",
    ),
    (
        "robustness/libpcap/filter__AH-IPcomp-IPv4.pcap",
        "IPComp (protocol 108) payloads are compressed; tshark inflates them, burstwatch counts them in a protocol-108 flow",
    ),
    (
        "robustness/libpcap/filter__AH-IPcomp-IPv6.pcap",
        "IPComp payloads (see filter__AH-IPcomp-IPv4)",
    ),
    (
        "ipv6-frag/ipv4__fragmented-1.pcap",
        "crafted overlapping/duplicate fragments: tshark's reassembly keeps one datagram, burstwatch counts every frame",
    ),
    (
        "ipv6-frag/ipv4__fragmented-2.pcap",
        "a fragmented datagram with a missing fragment: tshark cannot reassemble it and lists no conversation, burstwatch counts the frames",
    ),
    (
        "ipv6-frag/ipv4__fragmented-3.pcap",
        "fragmented datagrams with missing fragments (see ipv4__fragmented-2)",
    ),
    (
        "malformed/ndpi/quic-fuzz-overflow.pcapng",
        "a lone first fragment: tshark waits for the rest and lists nothing, burstwatch counts it in its flow",
    ),
    (
        "malformed/ndpi/fuzz-2006-06-26-2594.pcap",
        "fuzzed fragment offsets: tshark's reassembly merges frames burstwatch counts separately",
    ),
    (
        "ipv6-frag/ip_fragmented_garbage.pcap",
        "random fragments: tshark reassembles two garbage datagrams into TCP headers, burstwatch counts orphan fragments in a port-0 flow",
    ),
    (
        "ipv6-frag/ipv6-mobility-dst-opts.pcap",
        "Mobile IPv6 routing header type 2: burstwatch keys on the final destination after the routing header, tshark on the IPv6 destination field for this packet",
    ),
    (
        "robustness/tcpdump/LINKTYPE_IPV6_invalid.pcap",
        "an IPv4 packet in a LINKTYPE_IPV6 capture: burstwatch decodes by the version nibble, tshark 4.0 refuses it (for the mirror case LINKTYPE_IPV4_invalid both agree)",
    ),
    (
        "robustness/tcpdump/beep-oobr.pcap",
        "fuzzed IPv6 packet whose payload length exceeds the capture: burstwatch counts it by the header (as snaplen-cut), tshark rejects it",
    ),
    (
        "robustness/tcpdump/heapoverflow-tcp_print.pcap",
        "fuzzed TCP header: burstwatch reads the ports from the fixed header, tshark rejects the options and lists nothing",
    ),
    (
        "robustness/tcpdump/mptcp-dss-oobr.pcap",
        "fuzzed MPTCP option: burstwatch reads the ports from the fixed header, tshark rejects the options and lists nothing",
    ),
    (
        "robustness/tcpdump/tcp-auth-heapoverflow.pcap",
        "fuzzed TCP options (see heapoverflow-tcp_print)",
    ),
    (
        "truncated/tcp__truncated-header.pcap",
        "a frame cut inside the TCP options: burstwatch counts it (ports are in the fixed 20 bytes), tshark drops it",
    ),
    (
        "linktypes/reasm_crash_anon.pcapng",
        "a frame cut inside the TCP options (see truncated/tcp__truncated-header)",
    ),
    (
        "encap/vntag_vlan_sandwich_clean.pcap",
        "VN-Tag between VLAN tags: burstwatch skips the tag and decodes the TCP packet, tshark 4.0 stops at the VN-Tag",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv4-geneve-ipv4.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv4-geneve-ipv6.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv4-vxlan-ipv4.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv4-vxlan-ipv6.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv6-geneve-ipv4.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv6-geneve-ipv6.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv6-vxlan-ipv4.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv6-vxlan-ipv6.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
    (
        "robustness/tcpdump/bigtcp-ipv6.pcap",
        "Linux BIG TCP (IPv4 total length 0 / IPv6 jumbogram without a jumbo option): burstwatch takes the length from the frame, tshark 4.0 rejects the packet",
    ),
];

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
        stats: serde_json::from_slice(&std::fs::read(&stats).expect("stats written"))
            .expect("stats JSON"),
        ..Ours::default()
    };
    for rec in json_lines(&std::fs::read(&flows).expect("flows written")) {
        let proto = rec["proto"].as_str().unwrap_or("").to_string();
        let n = rec["packets_fwd"].as_u64().unwrap_or(0) + rec["packets_rev"].as_u64().unwrap_or(0);
        // Outer tunnel conversations: initiator packets travelled under `tunnel`, responder
        // packets under `tunnel_rev` when it is present (else under `tunnel` too).
        let fwd = rec["packets_fwd"].as_u64().unwrap_or(0);
        let rev = rec["packets_rev"].as_u64().unwrap_or(0);
        let rev_layers = if rec.get("tunnel_rev").is_some() {
            &rec["tunnel_rev"]
        } else {
            &rec["tunnel"]
        };
        for (layers, count) in [(&rec["tunnel"], fwd), (rev_layers, rev)] {
            for l in layers.as_array().into_iter().flatten() {
                let (sp, dp) = (l["outer_sport"].as_u64(), l["outer_dport"].as_u64());
                if let (Some(sp), Some(dp)) = (sp, dp) {
                    let a = (
                        normalize_ip(l["outer_src"].as_str().unwrap_or("")),
                        sp as u16,
                    );
                    let b = (
                        normalize_ip(l["outer_dst"].as_str().unwrap_or("")),
                        dp as u16,
                    );
                    *ours.outer.entry(conv_key("udp", a, b)).or_insert(0) += count;
                }
            }
        }
        if proto != "tcp" && proto != "udp" {
            continue;
        }
        let a = (
            normalize_ip(rec["src"].as_str().unwrap_or("")),
            rec["sport"].as_u64().unwrap_or(0) as u16,
        );
        let b = (
            normalize_ip(rec["dst"].as_str().unwrap_or("")),
            rec["dport"].as_u64().unwrap_or(0) as u16,
        );
        let key = conv_key(&proto, a, b);
        *ours.packets.entry(key.clone()).or_insert(0) += n;
        let f =
            rec["fragments_fwd"].as_u64().unwrap_or(0) + rec["fragments_rev"].as_u64().unwrap_or(0);
        *ours.fragments.entry(key).or_insert(0) += f;
    }
    ours
}

/// Compare one file; `Ok(rule)` names the rule that made the counts agree.
fn compare(theirs: &BTreeMap<ConvKey, u64>, ours: &Ours) -> Result<&'static str, String> {
    let frames = ours.stats["packets"].as_u64().unwrap_or(0);
    let unsupported = ours.stats["decode_errors"]["unsupported_link_type"]
        .as_u64()
        .unwrap_or(0);
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
                Some(&outer) => problems.push(format!(
                    "{key:?} (tunnel outer): tshark {n}, burstwatch {outer}"
                )),
                None => problems.push(format!("{key:?}: tshark {n}, burstwatch none")),
            },
        }
    }
    let listed: BTreeSet<&ConvKey> = theirs.keys().collect();
    for (key, n) in &ours.packets {
        if !listed.contains(key) {
            if ours.fragments.get(key) == Some(n) {
                // Only later fragments, their first fragment never seen: nothing to reassemble.
                rule = "exact; orphan IP fragments tshark cannot reassemble";
                continue;
            }
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
        let truth = root
            .join("truth")
            .join(format!("{}.conv.txt", row.path.replace('/', "__")));
        let Ok(text) = std::fs::read_to_string(&truth) else {
            continue;
        };
        checked += 1;
        let theirs = parse_tshark_conv(&text);
        let ours = analyze(&root.join(&row.path), tmp.path());
        match (compare(&theirs, &ours), known.get(row.path.as_str())) {
            (Ok(rule), None) => *by_rule.entry(rule).or_insert(0) += 1,
            (Err(_), Some(_)) => {
                *by_rule
                    .entry("known difference (listed with reason)")
                    .or_insert(0) += 1
            }
            (Ok(_), Some(_)) => failures.push(format!(
                "{}: now agrees with tshark: remove it from KNOWN_DIFFERENCES",
                row.path
            )),
            (Err(e), None) => failures.push(format!("{} [{}]:\n    {e}", row.path, row.link_type)),
        }
    }
    eprintln!("checked {checked} captures against tshark:");
    for (rule, n) in &by_rule {
        eprintln!("  {n:5}  {rule}");
    }
    assert!(
        checked > 1000,
        "expected the full corpus, found {checked} truth tables"
    );
    assert!(
        failures.is_empty(),
        "{} captures disagree with tshark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
