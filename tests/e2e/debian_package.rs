//! The Debian package (`deploy/deb/build.sh`), built from the binary under test and inspected
//! with dpkg-deb without installing it: its files, modes and owners, the configuration as a
//! conffile, the Depends computed from the binary, the man pages and completions the binary
//! writes. (CI installs it, runs it and purges it: `.ci/run`.)

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use burstwatch_tests::{bin, repo};

fn dpkg_deb(args: &[&str]) -> String {
    let out = Command::new("dpkg-deb").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn build(out_dir: &Path) -> PathBuf {
    let out = Command::new(repo().join("deploy/deb/build.sh"))
        .arg(bin())
        .arg(out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "build.sh: {stderr}");
    // dpkg-shlibdeps and dpkg-deb had nothing to say.
    assert!(!stderr.contains("warning"), "{stderr}");
    let deb = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(
        deb.starts_with(out_dir) && deb.exists(),
        "{}",
        deb.display()
    );
    deb
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn the_debian_package_holds_binary_conffile_unit_man_pages_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build(dir.path());
    let deb_s = deb.to_str().unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&format!("burstwatch_{version}_")),
        "{}",
        deb.display()
    );

    // Control fields; Depends from the binary's libraries (libpcap under its name here).
    let fields = dpkg_deb(&["-f", deb_s, "Package", "Version", "Depends", "Maintainer"]);
    assert!(fields.contains("Package: burstwatch\n"), "{fields}");
    assert!(
        fields.contains(&format!("Version: {version}\n")),
        "{fields}"
    );
    let depends = fields
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends:\n{fields}"));
    for lib in ["libc6 (>= ", "libpcap0.8"] {
        assert!(
            depends.contains(lib),
            "{lib} missing from Depends: {depends}"
        );
    }

    // Files, modes and owners.
    let listing = dpkg_deb(&["-c", deb_s]);
    let entry = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" ./{path}")))
            .unwrap_or_else(|| panic!("{path} not in the package:\n{listing}"))
            .to_owned()
    };
    assert!(entry("usr/bin/burstwatch").starts_with("-rwxr-xr-x root/root "));
    let mut expected = vec![
        "etc/burstwatch/burstwatch.toml".to_owned(),
        "usr/lib/systemd/system/burstwatch.service".to_owned(),
        "usr/share/bash-completion/completions/burstwatch".to_owned(),
        "usr/share/zsh/vendor-completions/_burstwatch".to_owned(),
        "usr/share/fish/vendor_completions.d/burstwatch.fish".to_owned(),
        "usr/share/doc/burstwatch/copyright".to_owned(),
        "usr/share/doc/burstwatch/README.md.gz".to_owned(),
        "usr/share/man/man1/burstwatch.1.gz".to_owned(),
    ];
    for command in [
        "analyze",
        "simulate",
        "daemon",
        "check-config",
        "eval",
        "carve",
        "keygen",
        "reveal",
        "completions",
        "man",
    ] {
        expected.push(format!("usr/share/man/man1/burstwatch-{command}.1.gz"));
    }
    for path in &expected {
        assert!(
            entry(path).starts_with("-rw-r--r-- root/root "),
            "{}",
            entry(path)
        );
    }
    assert!(
        listing.lines().all(|l| l.contains(" root/root ")),
        "a file not owned by root:\n{listing}"
    );

    // The configuration is a conffile; maintainer scripts are shell that parses.
    let ctrl = dir.path().join("control");
    dpkg_deb(&["-e", deb_s, ctrl.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(ctrl.join("conffiles")).unwrap(),
        "/etc/burstwatch/burstwatch.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let st = Command::new("sh")
            .arg("-n")
            .arg(ctrl.join(script))
            .status()
            .unwrap();
        assert!(st.success(), "{script} does not parse");
    }

    // Contents: the repository's config and unit as they are, pages and completions that
    // describe this binary.
    let root = dir.path().join("root");
    dpkg_deb(&["-x", deb_s, root.to_str().unwrap()]);
    let same = |packaged: &str, source: &str| {
        assert_eq!(
            std::fs::read(root.join(packaged)).unwrap(),
            std::fs::read(repo().join(source)).unwrap(),
            "{packaged} differs from {source}"
        );
    };
    same("etc/burstwatch/burstwatch.toml", "config/burstwatch.toml");
    same(
        "usr/lib/systemd/system/burstwatch.service",
        "deploy/systemd/burstwatch.service",
    );
    let page = gunzip(&root.join("usr/share/man/man1/burstwatch-analyze.1.gz"));
    assert!(page.contains(".TH burstwatch-analyze 1"), "{page}");
    assert!(
        page.contains("\\-\\-read") && page.contains(".SH EXAMPLES"),
        "{page}"
    );
    let bash =
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/burstwatch"))
            .unwrap();
    assert!(
        bash.contains("_burstwatch()") && bash.contains("--home-net"),
        "{bash}"
    );
    let copyright =
        std::fs::read_to_string(root.join("usr/share/doc/burstwatch/copyright")).unwrap();
    assert!(
        copyright.contains("License: MIT or Apache-2.0"),
        "{copyright}"
    );
}
