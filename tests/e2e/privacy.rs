//! Pseudonymisation end to end: no home address of the clear run survives in any output of a
//! pseudonymised run, and `reveal` maps every pseudonym back to the address it replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use burstwatch_tests::{json_lines, run, run_ok, write_test_key};

use crate::simcap::{addresses_in, analyze, is_home, sim};

/// `keygen -o path`.
pub fn keygen(path: &std::path::Path) {
    run_ok(&["keygen", "-o", path.to_str().unwrap()]);
}

/// `reveal` of many addresses at once: pseudonym -> original.
pub fn reveal(key: &std::path::Path, addrs: &BTreeSet<IpAddr>) -> BTreeMap<IpAddr, IpAddr> {
    let mut args = vec![
        "reveal".to_string(),
        "--key".into(),
        key.to_str().unwrap().into(),
    ];
    args.extend(addrs.iter().map(ToString::to_string));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_ok(&refs);
    let map: BTreeMap<IpAddr, IpAddr> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (p, o) = l.split_once(' ').unwrap();
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    assert_eq!(map.len(), addrs.len());
    map
}

fn addr(v: &serde_json::Value, k: &str) -> IpAddr {
    v[k].as_str().unwrap().parse().unwrap()
}

/// Checks record by record that the pseudonymised lines equal the clear ones once every
/// address is revealed, and that exactly the expected addresses were mapped.
fn check_lines(
    clear: &[serde_json::Value],
    pseudo: &[serde_json::Value],
    key: &std::path::Path,
    endpoints_too: bool,
) {
    assert_eq!(clear.len(), pseudo.len());
    let mapped = |a: IpAddr| endpoints_too || is_home(a);
    let mut wanted = BTreeSet::new();
    for (c, p) in clear.iter().zip(pseudo) {
        for k in ["src", "dst"] {
            if mapped(addr(c, k)) {
                wanted.insert(addr(p, k));
            }
        }
    }
    let back = reveal(key, &wanted);
    for (c, p) in clear.iter().zip(pseudo) {
        let mut revealed = p.clone();
        for k in ["src", "dst"] {
            let (ca, pa) = (addr(c, k), addr(p, k));
            if mapped(ca) {
                assert_ne!(ca, pa, "{k} {ca} left in clear");
                revealed[k] = back[&pa].to_string().into();
            } else {
                assert_eq!(ca, pa, "{k} {ca} should stay in clear");
            }
        }
        // The roles repeat the addresses; Community IDs hash the addresses as written, so
        // a pseudonymised line's IDs match nothing in other tools' data.
        let src = revealed["src"].clone();
        if let Some(sub) = revealed.get_mut("subscriber") {
            sub["address"] = src;
        }
        if revealed
            .get("endpoint")
            .is_some_and(|e| e.get("address").is_some())
        {
            let dst = revealed["dst"].clone();
            revealed["endpoint"]["address"] = dst;
        }
        for k in ["community_id", "community_ids"] {
            if let Some(id) = c.get(k) {
                if mapped(addr(c, "src")) || mapped(addr(c, "dst")) {
                    assert_ne!(id, &p[k], "{k} must change with the addresses");
                }
                revealed[k] = id.clone();
            }
        }
        if c.get("id").is_some() {
            assert_ne!(
                c["id"], p["id"],
                "alert ids hash the pair: they must change too"
            );
            revealed["id"] = c["id"].clone();
        }
        assert_eq!(&revealed, c);
    }
}

#[test]
fn pseudonymised_outputs_hold_no_home_address_and_reveal_inverts_them() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    // keygen writes a key only its owner can read.
    let generated = dir.path().join("generated.key");
    keygen(&generated);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&generated).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = dir.path().join("key");
    write_test_key(&key);
    let home: BTreeSet<IpAddr> = addresses_in(&s.outputs)
        .into_iter()
        .filter(|a| is_home(*a))
        .collect();
    assert!(
        home.len() >= 20,
        "the clear run names subscribers: {}",
        home.len()
    );
    let keyarg = key.to_str().unwrap();
    let outs = analyze(dir.path(), "pseudo", &s.pcap, &["--pseudonymize", keyarg]);
    let all: Vec<u8> = outs.concat();
    let leaked: Vec<IpAddr> = addresses_in(&all)
        .into_iter()
        .filter(|a| home.contains(a))
        .collect();
    assert!(
        leaked.is_empty(),
        "home addresses in pseudonymised output: {leaked:?}"
    );
    // The alert table on stderr is there, with pseudonyms.
    let stderr = String::from_utf8_lossy(&outs[3]);
    assert!(stderr.contains("alert(s); top"), "{stderr}");
    check_lines(&s.flows, &json_lines(&outs[0]), &key, false);
    check_lines(&s.alerts, &json_lines(&outs[1]), &key, false);
    // External endpoints stay readable by default.
    assert!(json_lines(&outs[1])
        .iter()
        .zip(&s.alerts)
        .all(|(p, c)| p["dst"] == c["dst"]));

    // --pseudonymize-endpoints maps every address; the same key gives the same pseudonyms.
    let every = analyze(
        dir.path(),
        "every",
        &s.pcap,
        &["--pseudonymize", keyarg, "--pseudonymize-endpoints"],
    );
    let clear_all: BTreeSet<IpAddr> = addresses_in(&s.outputs).into_iter().collect();
    let left: Vec<IpAddr> = addresses_in(&every.concat())
        .into_iter()
        .filter(|a| clear_all.contains(a))
        .collect();
    assert!(left.is_empty(), "addresses left in clear: {left:?}");
    check_lines(&s.flows, &json_lines(&every[0]), &key, true);
    let again = analyze(dir.path(), "again", &s.pcap, &["--pseudonymize", keyarg]);
    assert_eq!(again[0], outs[0]);
    assert_eq!(again[1], outs[1]);

    // The config's privacy.key_file (relative to the config) does what the flag does.
    let cfg = dir.path().join("private.toml");
    std::fs::write(&cfg, "[privacy]\nkey_file = \"key\"\n").unwrap();
    let cfgarg = cfg.to_str().unwrap();
    let by_config = analyze(dir.path(), "config", &s.pcap, &["--config", cfgarg]);
    assert_eq!(by_config[0], outs[0]);
    assert_eq!(by_config[1], outs[1]);
    // check-config checks a daemon config: it needs an interface.
    let daemon_part = "[daemon]\ninterfaces = [\"lo\"]\n";
    std::fs::write(
        &cfg,
        format!("{daemon_part}[privacy]\nkey_file = \"key\"\n"),
    )
    .unwrap();
    let checked = run(&["check-config", cfgarg]);
    assert_eq!(checked.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&checked.stdout).contains("pseudonymised output"));
    std::fs::write(
        &cfg,
        format!("{daemon_part}[privacy]\nkey_file = \"missing.key\"\n"),
    )
    .unwrap();
    let checked = run(&["check-config", cfgarg]);
    assert_eq!(checked.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&checked.stderr).contains("privacy.key_file"),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // Endpoints alone, with no key anywhere, is a usage error rather than a silent no-op.
    let out = run(&[
        "analyze",
        s.pcap.to_str().unwrap(),
        "--pseudonymize-endpoints",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(2));

    // Another key gives other pseudonyms.
    let key2 = dir.path().join("key2");
    keygen(&key2);
    let other = analyze(
        dir.path(),
        "other",
        &s.pcap,
        &["--pseudonymize", key2.to_str().unwrap()],
    );
    assert_ne!(other[0], outs[0]);
}

#[test]
fn key_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    keygen(&key);
    // An existing key is never overwritten by accident.
    let out = run(&["keygen", "-o", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "not a key").unwrap();
    let out = run(&["reveal", "--key", bad.to_str().unwrap(), "10.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("64 hexadecimal digits"));
}

#[test]
fn tunnel_outer_addresses_follow_the_home_rule() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    write_test_key(&key);
    let keyarg = key.to_str().unwrap();
    let encap = burstwatch_tests::corpus().join("encap");
    let mut layers_seen = 0;
    for entry in std::fs::read_dir(&encap).unwrap() {
        let path = entry.unwrap().path();
        let p = path.to_str().unwrap();
        let flows = |extra: &[&str]| {
            let mut args = vec!["analyze", p, "--flows", "-", "-q"];
            args.extend_from_slice(extra);
            json_lines(&run(&args).stdout)
        };
        let clear = flows(&[]);
        let home_only = flows(&["--pseudonymize", keyarg]);
        let every = flows(&["--pseudonymize", keyarg, "--pseudonymize-endpoints"]);
        assert_eq!(clear.len(), home_only.len(), "{p}");
        assert_eq!(clear.len(), every.len(), "{p}");
        for ((c, h), e) in clear.iter().zip(&home_only).zip(&every) {
            let Some(layers) = c["tunnel"].as_array() else {
                continue;
            };
            for (i, layer) in layers.iter().enumerate() {
                for k in ["outer_src", "outer_dst"] {
                    let ca = addr(layer, k);
                    let ha = addr(&h["tunnel"][i], k);
                    let ea = addr(&e["tunnel"][i], k);
                    assert_eq!(ca != ha, is_home(ca), "{p}: {k} {ca} -> {ha}");
                    assert_ne!(ca, ea, "{p}: {k} {ca} left in clear");
                    layers_seen += 1;
                }
            }
        }
    }
    assert!(layers_seen > 20, "tunnel layers checked: {layers_seen}");
}
