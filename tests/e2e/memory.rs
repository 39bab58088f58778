//! The memory budget (`limits.memory_budget_mib`, `--memory-budget-mib`): under a flood of
//! distinct sources, the peak resident set of `analyze` (GNU time's maximum RSS) stays within
//! the budget with one worker and two, and every entry the caps turned away is counted in
//! `--stats`.

use std::path::Path;
use std::process::Command;

use burstwatch_tests::bin;

/// Sources in the flood: a few seconds of work, enough to fill every table of a 64 MiB budget
/// several times over.
const SOURCES: u64 = 300_000;
const BUDGET_MIB: u64 = 64;

/// A capture like `deploy/bench/flood_pcap.py`: one 62-byte UDP/IPv6 frame per random source
/// in 2001:db8::/32 to one of four subscribers in fd00::/8, a microsecond apart.
fn flood(path: &Path, n: u64) {
    let mut out = Vec::with_capacity(24 + n as usize * 78);
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    out.extend_from_slice(&2_u16.to_le_bytes());
    out.extend_from_slice(&4_u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535_u32.to_le_bytes());
    out.extend_from_slice(&1_u32.to_le_bytes());
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in 0..n {
        let sec = 1_700_000_000 + (i / 1_000_000) as u32;
        out.extend_from_slice(&sec.to_le_bytes());
        out.extend_from_slice(&((i % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&62_u32.to_le_bytes());
        out.extend_from_slice(&62_u32.to_le_bytes());
        out.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd]);
        out.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 17, 64]);
        out.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        out.extend_from_slice(&next().to_be_bytes());
        out.extend_from_slice(&(next() as u32).to_be_bytes());
        let mut home = [0_u8; 16];
        home[0] = 0xfd;
        home[7] = (i % 4) as u8 + 1;
        home[15] = 1;
        out.extend_from_slice(&home);
        out.extend_from_slice(&(next() as u16).to_be_bytes());
        out.extend_from_slice(&[0x01, 0xbb, 0, 8, 0, 0]);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn analyze_stays_within_its_memory_budget_under_a_flood_and_counts_the_drops() {
    let time = Path::new("/usr/bin/time");
    assert!(time.exists(), "GNU time is needed at /usr/bin/time");
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("flood.pcap");
    flood(&cap, SOURCES);
    for workers in ["1", "2"] {
        let (rss, stats) = (dir.path().join("time.txt"), dir.path().join("stats.json"));
        let out = Command::new(time)
            .arg("-v")
            .arg("-o")
            .arg(&rss)
            .arg(bin())
            .args([
                "analyze",
                "--quiet",
                "--flows",
                "/dev/null",
                "--workers",
                workers,
            ])
            .args(["--memory-budget-mib", &BUDGET_MIB.to_string(), "--stats"])
            .arg(&stats)
            .arg(&cap)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let time_out = std::fs::read_to_string(&rss).unwrap();
        let kib: u64 = time_out
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|v| v.trim().parse().ok())
            .expect("GNU time's maximum resident set size");
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        let m = &s["memory"];
        eprintln!("{workers} worker(s): peak RSS {} KiB; {m}", kib);
        assert_eq!(m["budget_mib"], BUDGET_MIB, "{s}");
        assert!(m["estimated_mib"].as_u64().unwrap() <= BUDGET_MIB, "{s}");
        assert!(
            kib <= BUDGET_MIB * 1024,
            "{workers} worker(s): peak RSS {kib} KiB above the budget of {BUDGET_MIB} MiB"
        );

        // Every source made a flow, a pair and an endpoint; what the caps turned away is
        // counted, what was kept is still held.
        let n = SOURCES;
        let get = |v: &serde_json::Value| v.as_u64().unwrap();
        assert_eq!(get(&s["flows_created"]), n, "{s}");
        let ended = &s["flows_ended"];
        let (evicted, kept) = (get(&ended["evicted"]), get(&ended["end_of_input"]));
        assert_eq!(evicted + kept, n, "{s}");
        let w: u64 = workers.parse().unwrap();
        assert!(kept <= w * get(&m["max_flows"]) && evicted > 0, "{s}");
        let d = &s["detect"];
        assert_eq!(get(&d["evicted_pairs"]) + get(&d["pairs"]), n, "{s}");
        assert_eq!(
            get(&d["evicted_endpoints"]) + get(&d["endpoints"]),
            n,
            "{s}"
        );
        assert!(get(&d["endpoints"]) <= get(&m["max_endpoints"]), "{s}");
        // Prefixes (prefix-level prevalence) are their own table: what was kept and what
        // was turned away add up to at least one and at most every source.
        let prefixes = get(&d["evicted_prefixes"]) + get(&d["prefixes"]);
        assert!(prefixes >= 1 && prefixes <= n, "{s}");
        assert!(get(&d["pairs"]) <= w * get(&m["max_pairs"]), "{s}");
        assert_eq!(get(&d["hosts"]), 4, "{s}");
    }
}
