//! What `analyze` and the daemon both need before their engines start: a hash key for the
//! run and the endpoint enrichment databases.

use std::hash::BuildHasher as _;
use std::path::Path;

use burstwatch_engine::detect::Enrich;

/// A key for the engine's hash tables, new for every run, so that crafted traffic cannot aim
/// for collisions. It never changes the output.
pub fn hash_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x6275_7273_7477_6174_u64)
}

/// The ASN and country databases, opened (read whole); `None` when neither is given.
pub fn open_enrich(
    asn: Option<&Path>,
    country: Option<&Path>,
) -> anyhow::Result<Option<Box<dyn Enrich>>> {
    if asn.is_none() && country.is_none() {
        return Ok(None);
    }
    let e = burstwatch_enrich::MmdbEnricher::open(asn, country)?;
    tracing::info!(
        asn = ?e.asn_database_type(),
        country = ?e.country_database_type(),
        "endpoint enrichment loaded"
    );
    Ok(Some(Box::new(e)))
}
