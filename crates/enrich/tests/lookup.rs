//! Lookups against the committed test databases in `tests/data/` (written by the
//! `make_test_mmdb` example), and the errors for files that are not the right database.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use burstwatch_enrich::{DbKind, Enrich, EnrichError, MmdbEnricher};

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../examples/make_test_mmdb.rs"]
mod make_test_mmdb;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn both() -> MmdbEnricher {
    MmdbEnricher::open(
        Some(&data("test-asn.mmdb")),
        Some(&data("test-country.mmdb")),
    )
    .unwrap()
}

#[test]
fn committed_files_match_the_writer() {
    // Regenerate with: cargo run -p burstwatch-enrich --example make_test_mmdb
    assert!(
        std::fs::read(data("test-asn.mmdb")).unwrap() == make_test_mmdb::asn_db(),
        "tests/data/test-asn.mmdb is stale: rerun the make_test_mmdb example"
    );
    assert!(
        std::fs::read(data("test-country.mmdb")).unwrap() == make_test_mmdb::country_db(),
        "tests/data/test-country.mmdb is stale: rerun the make_test_mmdb example"
    );
}

#[test]
fn maxminddb_reader_accepts_and_verifies_the_files() {
    use maxminddb::{geoip2, Reader};
    for (name, kind) in [
        ("test-asn.mmdb", "GeoLite2-ASN"),
        ("test-country.mmdb", "GeoLite2-Country"),
    ] {
        let r = Reader::open_readfile(data(name)).unwrap();
        r.verify().unwrap_or_else(|e| panic!("{name}: {e}"));
        let m = r.metadata();
        assert_eq!(m.database_type, kind);
        assert_eq!((m.ip_version, m.record_size), (6, 24));
        assert_eq!(m.binary_format_major_version, 2);
        assert_eq!(m.build_epoch, make_test_mmdb::BUILD_EPOCH);
        assert_eq!(m.languages, ["en"]);
    }

    // The records decode into the crate's own GeoLite2 structs, so the layout is the real one.
    let asn = Reader::open_readfile(data("test-asn.mmdb")).unwrap();
    let res = asn.lookup(ip("192.0.2.77")).unwrap();
    let rec: geoip2::Asn<'_> = res.decode().unwrap().unwrap();
    assert_eq!(rec.autonomous_system_number, Some(64500));
    assert_eq!(
        rec.autonomous_system_organization,
        Some("Example Documentation Net A")
    );
    assert_eq!(res.network().unwrap().to_string(), "192.0.2.0/24");
    let res = asn.lookup(ip("2001:db8:1::5")).unwrap();
    assert_eq!(res.network().unwrap().to_string(), "2001:db8::/32");

    let country = Reader::open_readfile(data("test-country.mmdb")).unwrap();
    let rec: geoip2::Country<'_> = country
        .lookup(ip("198.51.100.9"))
        .unwrap()
        .decode()
        .unwrap()
        .unwrap();
    assert_eq!(rec.country.iso_code, Some("XB"));
    assert_eq!(rec.country.names.english, Some("Example Country B"));
    assert_eq!(rec.registered_country.iso_code, Some("XA"));

    // Every network the files hold, in order.
    let nets: Vec<String> = asn
        .networks(Default::default())
        .unwrap()
        .map(|r| r.unwrap().network().unwrap().to_string())
        .collect();
    assert_eq!(
        nets,
        [
            "192.0.2.0/24",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "2001:db8::/32"
        ]
    );
}

#[test]
fn ipv4_lookups_inside_and_outside_each_prefix() {
    let e = both();
    let cases: [(&str, Option<u32>, Option<&str>); 14] = [
        ("192.0.2.0", Some(64500), Some("XA")),
        ("192.0.2.255", Some(64500), Some("XA")),
        ("192.0.1.255", None, None),
        ("192.0.3.0", None, None),
        ("198.51.100.1", Some(64501), Some("XB")),
        ("198.51.101.0", None, None),
        // Only registered_country in the record: the fallback answers.
        ("203.0.113.200", Some(64502), Some("XA")),
        ("203.0.114.1", None, None),
        // The /15 covers 198.18.0.0 - 198.19.255.255; no country for it.
        ("198.18.0.1", Some(64510), None),
        ("198.19.255.254", Some(64510), None),
        ("198.17.255.255", None, None),
        ("198.20.0.0", None, None),
        ("0.0.0.0", None, None),
        ("255.255.255.255", None, None),
    ];
    for (addr, asn, cc) in cases {
        assert_eq!(
            e.lookup(ip(addr)),
            (asn, cc.map(str::to_owned)),
            "lookup({addr})"
        );
    }
}

#[test]
fn ipv6_lookups_inside_and_outside_the_prefix() {
    let e = both();
    let cases: [(&str, Option<u32>, Option<&str>); 7] = [
        ("2001:db8::", Some(64511), Some("XC")),
        (
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            Some(64511),
            Some("XC"),
        ),
        ("2001:db9::1", None, None),
        ("2001:db7:ffff::1", None, None),
        ("::1", None, None),
        ("fe80::1", None, None),
        // IPv4-compatible form of 192.0.2.1: the IPv4 subtree under ::/96.
        ("::192.0.2.1", Some(64500), Some("XA")),
    ];
    for (addr, asn, cc) in cases {
        assert_eq!(
            e.lookup(ip(addr)),
            (asn, cc.map(str::to_owned)),
            "lookup({addr})"
        );
    }
}

#[test]
fn ipv4_mapped_addresses_resolve_as_ipv4() {
    let e = both();
    assert_eq!(
        e.lookup(ip("::ffff:198.51.100.7")),
        (Some(64501), Some("XB".to_owned()))
    );
    assert_eq!(e.lookup(ip("::ffff:10.0.0.1")), (None, None));
    // The files alias ::ffff:0:0/96 to the IPv4 subtree too, as GeoLite2 files do.
    let r = maxminddb::Reader::open_readfile(data("test-asn.mmdb")).unwrap();
    let n: Option<u32> = r
        .lookup(ip("::ffff:203.0.113.1"))
        .unwrap()
        .decode_path(&maxminddb::path!["autonomous_system_number"])
        .unwrap();
    assert_eq!(n, Some(64502));
}

#[test]
fn organization_and_metadata_accessors() {
    let e = both();
    assert_eq!(
        e.asn_org(ip("198.51.100.3")).as_deref(),
        Some("Example Documentation Net B")
    );
    assert_eq!(
        e.asn_org(ip("2001:db8::1")).as_deref(),
        Some("Example Documentation Net v6")
    );
    // 64502 has no organization in the file.
    assert_eq!(e.asn(ip("203.0.113.1")), Some(64502));
    assert_eq!(e.asn_org(ip("203.0.113.1")), None);
    assert_eq!(e.asn_org(ip("8.8.8.8")), None);
    assert_eq!(e.asn_database_type(), Some("GeoLite2-ASN"));
    assert_eq!(e.country_database_type(), Some("GeoLite2-Country"));
    let epoch = make_test_mmdb::BUILD_EPOCH;
    assert_eq!(e.build_epochs(), (Some(epoch), Some(epoch)));
}

#[test]
fn either_database_alone_or_none() {
    let asn_only = MmdbEnricher::open(Some(&data("test-asn.mmdb")), None).unwrap();
    assert_eq!(asn_only.lookup(ip("192.0.2.1")), (Some(64500), None));
    assert_eq!(asn_only.country_database_type(), None);

    let cc_only = MmdbEnricher::open(None, Some(&data("test-country.mmdb"))).unwrap();
    assert_eq!(
        cc_only.lookup(ip("192.0.2.1")),
        (None, Some("XA".to_owned()))
    );

    let none = MmdbEnricher::open(None, None).unwrap();
    assert_eq!(none.lookup(ip("192.0.2.1")), (None, None));
}

#[test]
fn usable_as_the_engines_boxed_enrich() {
    let boxed: Box<dyn burstwatch_engine::detect::Enrich> = Box::new(both());
    assert_eq!(boxed.lookup(ip("192.0.2.1")).0, Some(64500));
}

#[test]
fn a_device_or_directory_is_refused_without_reading_it() {
    // `/dev/zero` used to be read until memory ran out.
    for path in [Path::new("/dev/zero"), Path::new("/")] {
        let err = MmdbEnricher::open(None, Some(path)).unwrap_err();
        assert!(matches!(err, EnrichError::Read { .. }), "{err:?}");
        let msg = format!("{:#}", anyhow_like(&err));
        assert!(msg.contains("not a regular file"), "{msg}");
    }
}

/// The error and its sources, as `{:#}` of anyhow prints them.
fn anyhow_like(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[test]
fn missing_file_is_a_read_error_naming_it() {
    let path = data("no-such-file.mmdb");
    let err = MmdbEnricher::open(Some(&path), None).unwrap_err();
    assert!(
        matches!(
            err,
            EnrichError::Read {
                kind: DbKind::Asn,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("cannot read ASN database"), "{msg}");
    assert!(msg.contains("no-such-file.mmdb"), "{msg}");
}

#[test]
fn a_file_that_is_not_an_mmdb_is_a_clear_error() {
    // The pcap beside the test databases: real bytes, wrong format.
    let path = data("sample.pcap");
    let err = MmdbEnricher::open(None, Some(&path)).unwrap_err();
    assert!(
        matches!(
            err,
            EnrichError::NotMmdb {
                kind: DbKind::Country,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("country database") && msg.contains("sample.pcap"),
        "{msg}"
    );
    assert!(msg.contains("is not a MaxMind DB (.mmdb) file"), "{msg}");
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("metadata"), "{source}");

    // Empty and truncated files too.
    let empty = MmdbEnricher::from_bytes(Some((Vec::new(), "empty.mmdb")), None).unwrap_err();
    assert!(matches!(empty, EnrichError::NotMmdb { .. }), "{empty:?}");
    let mut cut = make_test_mmdb::asn_db();
    cut.truncate(cut.len() - 20);
    let cut = MmdbEnricher::from_bytes(Some((cut, "cut.mmdb")), None).unwrap_err();
    assert!(matches!(cut, EnrichError::NotMmdb { .. }), "{cut:?}");
}

#[test]
fn databases_swapped_are_wrong_type_errors() {
    let err = MmdbEnricher::open(
        Some(&data("test-country.mmdb")),
        Some(&data("test-asn.mmdb")),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, EnrichError::WrongType { kind: DbKind::Asn, ref found, .. } if found == "GeoLite2-Country"),
        "{err:?}"
    );
    assert!(msg.contains("test-country.mmdb"), "{msg}");
    assert!(msg.contains("GeoLite2-ASN"), "{msg}");

    let err = MmdbEnricher::open(None, Some(&data("test-asn.mmdb"))).unwrap_err();
    assert!(
        matches!(err, EnrichError::WrongType { kind: DbKind::Country, ref found, .. } if found == "GeoLite2-ASN"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "country database {} has database_type \"GeoLite2-ASN\": expected a type \
             containing \"country\" or \"city\" or \"enterprise\" (e.g. GeoLite2-Country)",
            data("test-asn.mmdb").display()
        )
    );
}

#[test]
fn other_vendors_database_types_are_accepted_by_name() {
    use make_test_mmdb::{map, s, Value, Writer};
    let asn = |t: &str| {
        let mut w = Writer::new(t, "t");
        let rec = map([("autonomous_system_number", Value::U32(64496))]);
        w.insert("192.0.2.0/24", &rec).unwrap();
        w.finish(0)
    };
    let cc = |t: &str| {
        let mut w = Writer::new(t, "t");
        let rec = map([("country", map([("iso_code", s("XA"))]))]);
        w.insert("192.0.2.0/24", &rec).unwrap();
        w.finish(0)
    };
    for t in [
        "GeoIP2-ISP",
        "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
        "ipinfo asn",
    ] {
        let e = MmdbEnricher::from_bytes(Some((asn(t), t)), None).unwrap();
        assert_eq!(e.asn(ip("192.0.2.1")), Some(64496), "{t}");
    }
    for t in ["GeoIP2-City", "GeoIP2-Enterprise", "DBIP-Country-Lite"] {
        let e = MmdbEnricher::from_bytes(None, Some((cc(t), t))).unwrap();
        assert_eq!(e.country(ip("192.0.2.1")).as_deref(), Some("XA"), "{t}");
    }
    let err = MmdbEnricher::from_bytes(Some((asn("GeoIP2-Domain"), "d.mmdb")), None).unwrap_err();
    assert!(matches!(err, EnrichError::WrongType { .. }), "{err:?}");
}
