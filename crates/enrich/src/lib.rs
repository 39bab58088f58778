//! Endpoint enrichment for burstwatch: autonomous system number and country of an address,
//! from MaxMind-format (`.mmdb`) databases.
//!
//! [`MmdbEnricher`] opens up to two databases at startup, reads each fully into memory (they
//! are small: a GeoLite2-ASN file is about 10 MB, a GeoLite2-Country file about 9 MB) and
//! implements the engine's [`Enrich`] trait, which the detector calls only when it scores an
//! alert, never per packet.
//!
//! | database | layout read | examples that fit |
//! |---|---|---|
//! | ASN | `autonomous_system_number` (u32), `autonomous_system_organization` (string) | GeoLite2-ASN, GeoIP2-ISP, DB-IP ASN Lite (GeoLite2 compatible) |
//! | country | `country.iso_code`, else `registered_country.iso_code` | GeoLite2-Country, GeoIP2-Country, GeoLite2-City, DB-IP Country/City Lite |
//!
//! Opening checks the file's `database_type` metadata, so an ASN file passed as the country
//! database (or the other way round) is an error at startup, not silent `None`s later.
//!
//! ```no_run
//! use std::path::Path;
//! use burstwatch_engine::detect::Enrich;
//! use burstwatch_enrich::MmdbEnricher;
//!
//! let enricher = MmdbEnricher::open(
//!     Some(Path::new("/var/lib/GeoIP/GeoLite2-ASN.mmdb")),
//!     Some(Path::new("/var/lib/GeoIP/GeoLite2-Country.mmdb")),
//! )?;
//! let (asn, country) = enricher.lookup("192.0.2.1".parse()?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use burstwatch_engine::detect::Enrich;
use maxminddb::{MaxMindDbError, PathElement, Reader};

/// Which of the two databases an error or a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    /// The autonomous-system database (e.g. GeoLite2-ASN).
    Asn,
    /// The country database (e.g. GeoLite2-Country).
    Country,
}

impl DbKind {
    /// Substrings of `database_type` (compared case-insensitively) accepted for this kind.
    fn accepted_types(self) -> &'static [&'static str] {
        match self {
            // GeoIP2-ISP records carry the same two ASN fields.
            DbKind::Asn => &["asn", "isp"],
            // City and Enterprise records carry `country` / `registered_country` too.
            DbKind::Country => &["country", "city", "enterprise"],
        }
    }

    fn example(self) -> &'static str {
        match self {
            DbKind::Asn => "GeoLite2-ASN",
            DbKind::Country => "GeoLite2-Country",
        }
    }

    fn accepts(self, database_type: &str) -> bool {
        let t = database_type.to_ascii_lowercase();
        self.accepted_types().iter().any(|a| t.contains(a))
    }
}

impl fmt::Display for DbKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DbKind::Asn => "ASN",
            DbKind::Country => "country",
        })
    }
}

/// Why a database could not be opened. Every variant names the file and the role it was given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrichError {
    /// The file could not be read (missing, permissions, a directory, ...).
    #[error("cannot read {kind} database {}", path.display())]
    Read {
        /// The role the file was given.
        kind: DbKind,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid MaxMind DB file.
    #[error("{kind} database {} is not a MaxMind DB (.mmdb) file", path.display())]
    NotMmdb {
        /// The role the file was given.
        kind: DbKind,
        /// The file.
        path: PathBuf,
        /// What the reader found wrong.
        #[source]
        source: MaxMindDbError,
    },
    /// The file is a MaxMind DB, but of a type that lacks the fields this role reads.
    #[error(
        "{kind} database {} has database_type {found:?}: expected a type containing {} \
         (e.g. {})",
        path.display(),
        kind.accepted_types().iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(" or "),
        kind.example()
    )]
    WrongType {
        /// The role the file was given.
        kind: DbKind,
        /// The file.
        path: PathBuf,
        /// The `database_type` found in the file's metadata.
        found: String,
    },
}

/// ASN and country lookups from MaxMind-format databases held in memory.
///
/// Either database may be absent; lookups in an absent database give `None`. An address not
/// covered by a database, or a record lacking the field, also gives `None`, as does a record
/// that fails to decode (a damaged file): enrichment is best effort and never stops detection.
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are looked up as the IPv4 address.
pub struct MmdbEnricher {
    asn: Option<Reader<Vec<u8>>>,
    country: Option<Reader<Vec<u8>>>,
}

impl fmt::Debug for MmdbEnricher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmdbEnricher")
            .field("asn", &self.asn_database_type())
            .field("country", &self.country_database_type())
            .finish()
    }
}

impl MmdbEnricher {
    /// Reads the given databases fully into memory and checks each one's type.
    ///
    /// `asn` must be an ASN-type database (its `database_type` contains `ASN` or `ISP`, as
    /// GeoLite2-ASN and GeoIP2-ISP do); `country` a country-type one (`Country`, `City` or
    /// `Enterprise`). With both `None` the enricher answers `(None, None)` for every address.
    ///
    /// # Errors
    /// [`EnrichError`] naming the file when it cannot be read, is not a MaxMind DB, or has the
    /// wrong database type for its role.
    pub fn open(asn: Option<&Path>, country: Option<&Path>) -> Result<Self, EnrichError> {
        Ok(Self {
            asn: asn.map(|p| open_db(p, DbKind::Asn)).transpose()?,
            country: country.map(|p| open_db(p, DbKind::Country)).transpose()?,
        })
    }

    /// Like [`open`](Self::open), from database bytes already in memory; `name` stands in for
    /// the path in errors.
    ///
    /// # Errors
    /// As [`open`](Self::open), less the read error.
    pub fn from_bytes(
        asn: Option<(Vec<u8>, &str)>,
        country: Option<(Vec<u8>, &str)>,
    ) -> Result<Self, EnrichError> {
        Ok(Self {
            asn: asn
                .map(|(b, name)| check_db(b, Path::new(name), DbKind::Asn))
                .transpose()?,
            country: country
                .map(|(b, name)| check_db(b, Path::new(name), DbKind::Country))
                .transpose()?,
        })
    }

    /// The ASN database's `database_type` (e.g. `GeoLite2-ASN`), when one is loaded.
    pub fn asn_database_type(&self) -> Option<&str> {
        self.asn
            .as_ref()
            .map(|r| r.metadata().database_type.as_str())
    }

    /// The country database's `database_type` (e.g. `GeoLite2-Country`), when one is loaded.
    pub fn country_database_type(&self) -> Option<&str> {
        self.country
            .as_ref()
            .map(|r| r.metadata().database_type.as_str())
    }

    /// Build times (seconds since the Unix epoch) of the ASN and country databases, for
    /// logging how fresh they are.
    pub fn build_epochs(&self) -> (Option<u64>, Option<u64>) {
        (
            self.asn.as_ref().map(|r| r.metadata().build_epoch),
            self.country.as_ref().map(|r| r.metadata().build_epoch),
        )
    }

    /// The autonomous system number of `ip`, when the ASN database covers it.
    pub fn asn(&self, ip: IpAddr) -> Option<u32> {
        field(
            self.asn.as_ref()?,
            ip,
            &[PathElement::Key("autonomous_system_number")],
        )
    }

    /// The organization holding the autonomous system of `ip`, when the ASN database names it.
    pub fn asn_org(&self, ip: IpAddr) -> Option<String> {
        field(
            self.asn.as_ref()?,
            ip,
            &[PathElement::Key("autonomous_system_organization")],
        )
    }

    /// The ISO 3166-1 alpha-2 code of the country of `ip` (where it is located, else where its
    /// block is registered), when the country database covers it.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let db = self.country.as_ref()?;
        field(
            db,
            ip,
            &[PathElement::Key("country"), PathElement::Key("iso_code")],
        )
        .or_else(|| {
            field(
                db,
                ip,
                &[
                    PathElement::Key("registered_country"),
                    PathElement::Key("iso_code"),
                ],
            )
        })
    }
}

impl Enrich for MmdbEnricher {
    fn lookup(&self, ip: IpAddr) -> (Option<u32>, Option<String>) {
        (self.asn(ip), self.country(ip))
    }

    fn as_org(&self, ip: IpAddr) -> Option<String> {
        self.asn_org(ip)
    }
}

/// The largest database read (GeoLite2-City, the largest common one, is about 70 MB).
const MAX_DB_BYTES: u64 = 4 << 30;

fn open_db(path: &Path, kind: DbKind) -> Result<Reader<Vec<u8>>, EnrichError> {
    use std::io::Read as _;
    let read_err = |source: std::io::Error| EnrichError::Read {
        kind,
        path: path.to_path_buf(),
        source,
    };
    // The type first: a device (`/dev/zero`) would be read forever, a FIFO waits for a writer.
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    if meta.len() > MAX_DB_BYTES {
        return Err(read_err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("larger than {MAX_DB_BYTES} bytes"),
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::fs::File::open(path)
        .map_err(read_err)?
        .take(MAX_DB_BYTES)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    check_db(bytes, path, kind)
}

fn check_db(bytes: Vec<u8>, path: &Path, kind: DbKind) -> Result<Reader<Vec<u8>>, EnrichError> {
    let reader = Reader::from_source(bytes).map_err(|source| EnrichError::NotMmdb {
        kind,
        path: path.to_path_buf(),
        source,
    })?;
    let found = &reader.metadata().database_type;
    if !kind.accepts(found) {
        return Err(EnrichError::WrongType {
            kind,
            path: path.to_path_buf(),
            found: found.clone(),
        });
    }
    Ok(reader)
}

/// Decodes one field of the record covering `ip`; `None` when there is none or it is damaged.
fn field<T>(db: &Reader<Vec<u8>>, ip: IpAddr, path: &[PathElement<'_>]) -> Option<T>
where
    T: serde::de::DeserializeOwned,
{
    db.lookup(ip.to_canonical()).ok()?.decode_path(path).ok()?
}
