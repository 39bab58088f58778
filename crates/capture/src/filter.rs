//! [`BpfFilter`]: a libpcap filter expression applied to packets from any source.

use std::fmt;

use pcap::{BpfProgram, Capture, Linktype};

use crate::{FilterError, LinkType, Packet};

/// A libpcap (BPF) filter expression, compiled once per link type on first use.
///
/// Packets whose link type libpcap cannot compile the expression for never match; they are
/// counted in [`BpfFilter::unsupported`]. The program sees the captured bytes only, so
/// length tests (`greater`, `less`, `len`) use the captured length.
pub struct BpfFilter {
    expr: String,
    /// Program per link type; `None` where libpcap could not compile for it.
    programs: Vec<(u32, Option<BpfProgram>)>,
    /// Index in `programs` of the last link type used.
    last: usize,
    unsupported: u64,
}

impl fmt::Debug for BpfFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BpfFilter")
            .field("expr", &self.expr)
            .field(
                "link_types",
                &self
                    .programs
                    .iter()
                    .map(|(l, p)| (*l, p.is_some()))
                    .collect::<Vec<_>>(),
            )
            .field("unsupported", &self.unsupported)
            .finish()
    }
}

fn compile(expr: &str, link_type: LinkType) -> Result<BpfProgram, String> {
    let n = i32::try_from(link_type.0)
        .map_err(|_| format!("link type {} out of range", link_type.0))?;
    let dead = Capture::dead(Linktype(n)).map_err(message)?;
    dead.compile(expr, true).map_err(message)
}

fn message(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(m) => m,
        e => e.to_string(),
    }
}

impl BpfFilter {
    /// Validates `expr` by compiling it for Ethernet; the error carries libpcap's message.
    pub fn new(expr: &str) -> Result<BpfFilter, FilterError> {
        let prog = compile(expr, LinkType::ETHERNET).map_err(|message| FilterError {
            expr: expr.to_string(),
            message,
        })?;
        Ok(BpfFilter {
            expr: expr.to_string(),
            programs: vec![(LinkType::ETHERNET.0, Some(prog))],
            last: 0,
            unsupported: 0,
        })
    }

    /// The expression as given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// Whether `pkt` passes the filter. Packets of a link type the expression cannot be
    /// compiled for return `false` and are counted.
    pub fn matches(&mut self, pkt: &Packet<'_>) -> bool {
        let lt = pkt.link_type.0;
        if self.programs.get(self.last).is_none_or(|(l, _)| *l != lt) {
            self.last = match self.programs.iter().position(|(l, _)| *l == lt) {
                Some(i) => i,
                None => {
                    let prog = compile(&self.expr, pkt.link_type).ok();
                    self.programs.push((lt, prog));
                    self.programs.len() - 1
                }
            };
        }
        match self.programs.get(self.last) {
            Some((_, Some(prog))) => prog.filter(pkt.data),
            _ => {
                self.unsupported += 1;
                false
            }
        }
    }

    /// Packets rejected because the expression could not be compiled for their link type.
    pub fn unsupported(&self) -> u64 {
        self.unsupported
    }

    /// Link types seen whose compilation failed.
    pub fn unsupported_link_types(&self) -> Vec<LinkType> {
        self.programs
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(l, _)| LinkType(*l))
            .collect()
    }
}
