//! [`Privacy`]: the one place where output addresses are pseudonymised. Every writer (flow and
//! alert JSON, the alert table, reports) passes each address it prints through
//! [`Privacy::addr`].

use std::net::IpAddr;
use std::path::Path;

use anyhow::Context as _;
use burstwatch_anon::Pseudonymizer;
use burstwatch_engine::PrefixSet;

/// Command-line options of pseudonymisation.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PrivacyArgs {
    /// Replace every home-network (subscriber) address in every output (flows, alerts, the
    /// alert table, the report) by its keyed, prefix-preserving pseudonym (Crypto-PAn). KEYFILE
    /// holds 32 raw bytes or 64 hex digits (`burstwatch keygen`); `burstwatch reveal` maps back.
    #[arg(long, value_name = "KEYFILE")]
    pub pseudonymize: Option<std::path::PathBuf>,
    /// With --pseudonymize (or the config's privacy.key_file), map external endpoints too
    /// (config: privacy.pseudonymize_endpoints).
    #[arg(long)]
    pub pseudonymize_endpoints: bool,
}

impl PrivacyArgs {
    /// The output mapping for these arguments and settings (`--pseudonymize`, else the config's
    /// `privacy.key_file`).
    pub fn privacy(&self, settings: &burstwatch_config::Settings) -> anyhow::Result<Privacy> {
        match self
            .pseudonymize
            .as_ref()
            .or(settings.privacy.key_file.as_ref())
        {
            None if self.pseudonymize_endpoints => anyhow::bail!(
                "--pseudonymize-endpoints needs a key: --pseudonymize KEYFILE or privacy.key_file"
            ),
            None => Ok(Privacy::disabled()),
            Some(key) => Privacy::from_key_file(
                key,
                settings.detect.home_nets.clone(),
                self.pseudonymize_endpoints || settings.privacy.pseudonymize_endpoints,
            ),
        }
    }
}

/// Which output addresses are replaced by their pseudonyms; the identity when disabled.
#[derive(Debug, Clone, Default)]
pub struct Privacy {
    inner: Option<Enabled>,
}

#[derive(Debug, Clone)]
struct Enabled {
    pseudonymizer: Pseudonymizer,
    home_nets: PrefixSet,
    endpoints: bool,
}

impl Privacy {
    /// No pseudonymisation: [`Privacy::addr`] returns its argument.
    pub fn disabled() -> Privacy {
        Privacy::default()
    }

    /// Pseudonymise addresses inside `home_nets`, and every other address too when
    /// `endpoints` is set.
    pub fn new(pseudonymizer: Pseudonymizer, home_nets: PrefixSet, endpoints: bool) -> Privacy {
        Privacy {
            inner: Some(Enabled {
                pseudonymizer,
                home_nets,
                endpoints,
            }),
        }
    }

    /// Reads the key file and enables pseudonymisation.
    pub fn from_key_file(
        path: &Path,
        home_nets: PrefixSet,
        endpoints: bool,
    ) -> anyhow::Result<Privacy> {
        let p =
            Pseudonymizer::from_key_file(path).context("cannot read the pseudonymisation key")?;
        Ok(Privacy::new(p, home_nets, endpoints))
    }

    /// Pseudonymise addresses inside `home_nets` from now on (a config reload); the key stays.
    pub fn set_home_nets(&mut self, home_nets: PrefixSet) {
        if let Some(e) = self.inner.as_mut() {
            e.home_nets = home_nets;
        }
    }

    /// Whether any address is mapped.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// An alert id as it may appear in output. Ids hash the address pair, so with
    /// pseudonymisation on they are replaced by a keyed tag (stable for the same key and
    /// input) that cannot confirm a guessed address.
    pub fn alert_id(&self, id: u64) -> u64 {
        match &self.inner {
            Some(e) => e.pseudonymizer.tag_u64(id),
            None => id,
        }
    }

    /// For the settings alone (the daemon): the config's `privacy.key_file`, if any.
    pub fn from_settings(settings: &burstwatch_config::Settings) -> anyhow::Result<Privacy> {
        PrivacyArgs::default().privacy(settings)
    }

    /// The alert as it may appear in output: addresses and id mapped. Writing it with
    /// [`Privacy::disabled`] then gives what writing the original with `self` gives.
    pub fn alert(&self, mut a: burstwatch_engine::Alert) -> burstwatch_engine::Alert {
        a.id = self.alert_id(a.id);
        a.src = self.addr(a.src);
        a.dst = self.addr(a.dst);
        a
    }

    /// The address as it may appear in output.
    #[inline]
    pub fn addr(&self, ip: IpAddr) -> IpAddr {
        match &self.inner {
            Some(e) if e.endpoints || e.home_nets.contains(ip) => e.pseudonymizer.pseudonymize(ip),
            _ => ip,
        }
    }
}

#[cfg(test)]
mod tests;
