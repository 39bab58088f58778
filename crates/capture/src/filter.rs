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

    /// Checks that libpcap compiles `expr` for `link_type` (a live capture's link type), as
    /// the capture will when it opens; the error carries libpcap's message.
    pub fn check(expr: &str, link_type: LinkType) -> Result<(), FilterError> {
        compile(expr, link_type)
            .map(drop)
            .map_err(|message| FilterError {
                expr: expr.to_string(),
                message,
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

/// `BPF_RET | BPF_K`: return a constant (0 drops the packet, n keeps its first n bytes).
const BPF_RET_K: u16 = 0x06;

/// The classic BPF program of `expr` for `link_type`, ready to attach to a socket
/// (`SO_ATTACH_FILTER`): libpcap's compiler makes it, and every accepting return is lowered to
/// `snaplen`, so the kernel keeps at most that many bytes of each packet. An empty `expr`
/// accepts everything (cut to `snaplen`).
pub(crate) fn kernel_program(
    expr: &str,
    link_type: LinkType,
    snaplen: u32,
) -> Result<Vec<libc::sock_filter>, FilterError> {
    let snaplen = snaplen.max(1);
    if expr.trim().is_empty() {
        return Ok(vec![libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: snaplen,
        }]);
    }
    let err = |message: String| FilterError {
        expr: expr.to_string(),
        message,
    };
    let prog = compile(expr, link_type).map_err(err)?;
    prog.get_instructions()
        .iter()
        .map(|insn| {
            // The pcap crate shows an instruction as "code jt jf k" (its only public view).
            let text = insn.to_string();
            let mut f = text.split(' ');
            let mut next = || f.next().unwrap_or_default();
            let (code, jt, jf, k) = (next(), next(), next(), next());
            let bad = || err(format!("libpcap instruction {text:?} not understood"));
            let mut i = libc::sock_filter {
                code: code.parse().map_err(|_| bad())?,
                jt: jt.parse().map_err(|_| bad())?,
                jf: jf.parse().map_err(|_| bad())?,
                k: k.parse().map_err(|_| bad())?,
            };
            if i.code == BPF_RET_K && i.k != 0 {
                i.k = i.k.min(snaplen);
            }
            Ok(i)
        })
        .collect()
}

#[cfg(test)]
mod kernel_program_tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn the_kernel_program_is_libpcaps_with_the_snaplen_in_its_returns() {
        let p = kernel_program("", LinkType::ETHERNET, 256).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].code, p[0].k), (BPF_RET_K, 256));

        let p = kernel_program("tcp port 443", LinkType::ETHERNET, 128).unwrap();
        let text = compile("tcp port 443", LinkType::ETHERNET).unwrap();
        assert_eq!(p.len(), text.get_instructions().len());
        assert!(p.len() > 5);
        let rets: Vec<u32> = p
            .iter()
            .filter(|i| i.code == BPF_RET_K)
            .map(|i| i.k)
            .collect();
        assert!(rets.contains(&0) && rets.contains(&128), "{rets:?}");
        assert!(rets.iter().all(|&k| k == 0 || k == 128), "{rets:?}");
        // The first instruction loads the ethertype (ldh [12]).
        assert_eq!((p[0].code, p[0].k), (0x28, 12));

        let e = kernel_program("tcp port", LinkType::ETHERNET, 128).unwrap_err();
        assert!(e.to_string().contains("tcp port"), "{e}");
    }
}
