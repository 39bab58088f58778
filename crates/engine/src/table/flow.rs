//! One flow of the table: its slab entry and how it becomes a [`FlowRecord`].

use burstwatch_wire::PacketMeta;

use crate::key::{addr_ip, FlowKey};
use crate::lru::Links;
use crate::record::{DirStats, EndReason, FlowContext, FlowRecord};
use crate::slab::SlabEntry;

/// Close-state bits.
pub(super) const FIN_LO: u8 = 1;
pub(super) const FIN_HI: u8 = 2;
pub(super) const RST_SEEN: u8 = 4;
/// ICMP/ICMPv6 flows (which have no close state): `icmp` holds the first packet's type and code.
pub(super) const ICMP_KNOWN: u8 = 8;

/// One slab entry. Kept small: see [`super::FlowTable::slab_entry_bytes`].
#[derive(Debug)]
pub(super) struct Flow {
    pub(super) key: FlowKey,
    /// The initiator is the `lo` endpoint.
    pub(super) init_is_lo: bool,
    /// Which list the flow is in, or `L_FREE`.
    pub(super) list: u8,
    /// TCP close state; `ICMP_KNOWN` for an ICMP flow.
    pub(super) close: u8,
    /// `context.tunnels` came from a `lo -> hi` packet (else from `hi -> lo`).
    pub(super) ctx_from_lo: bool,
    /// ICMP/ICMPv6 type and code of the first packet (the initiator's), if `close` says so
    /// (two bytes in what was padding: an `Option` would grow every slab entry by 8).
    pub(super) icmp: [u8; 2],
    pub(super) links: Links,
    /// A value the engine attaches to the flow (the detector's pair slot); `NIL` when new.
    pub(super) pair_slot: u32,
    /// `[lo -> hi, hi -> lo]`.
    pub(super) dirs: [DirStats; 2],
    pub(super) context: Option<Box<FlowContext>>,
}

impl Flow {
    pub(super) fn last_ns(&self) -> i64 {
        self.dirs[0].last_ns.max(self.dirs[1].last_ns)
    }

    pub(super) fn first_ns(&self) -> i64 {
        match (self.dirs[0].packets, self.dirs[1].packets) {
            (0, _) => self.dirs[1].first_ns,
            (_, 0) => self.dirs[0].first_ns,
            _ => self.dirs[0].first_ns.min(self.dirs[1].first_ns),
        }
    }
}

impl SlabEntry for Flow {
    type Key = FlowKey;
    #[inline]
    fn key(&self) -> FlowKey {
        self.key
    }
    #[inline]
    fn links(&mut self) -> &mut Links {
        &mut self.links
    }
}

pub(super) fn context_of(meta: &PacketMeta) -> Option<Box<FlowContext>> {
    if meta.vlan_count == 0 && meta.tunnel_count == 0 && meta.mpls_label.is_none() {
        return None;
    }
    Some(Box::new(FlowContext {
        vlans: meta.vlans().to_vec(),
        mpls_label: meta.mpls_label,
        tunnels: meta.tunnels().copied().collect(),
        tunnels_rev: Vec::new(),
    }))
}

/// The first packet against the direction the context came from: keep its tunnel layers when
/// they differ.
#[cold]
pub(super) fn note_reverse_tunnels(flow: &mut Flow, meta: &PacketMeta) {
    let ctx = flow.context.get_or_insert_with(Box::default);
    if !ctx.tunnels.iter().eq(meta.tunnels()) {
        ctx.tunnels_rev = meta.tunnels().copied().collect();
    }
}

pub(super) fn to_record(
    flow: &Flow,
    reason: EndReason,
    mut context: Option<Box<FlowContext>>,
) -> FlowRecord {
    let k = &flow.key;
    if flow.ctx_from_lo != flow.init_is_lo {
        if let Some(ctx) = context.as_deref_mut() {
            if !ctx.tunnels_rev.is_empty() {
                std::mem::swap(&mut ctx.tunnels, &mut ctx.tunnels_rev);
            }
        }
    }
    let (init, resp, fwd, rev) = if flow.init_is_lo {
        (k.lo, k.hi, flow.dirs[0], flow.dirs[1])
    } else {
        (k.hi, k.lo, flow.dirs[1], flow.dirs[0])
    };
    FlowRecord {
        proto: k.proto,
        src: addr_ip(init.addr, k.v4),
        sport: init.port,
        dst: addr_ip(resp.addr, k.v4),
        dport: resp.port,
        fwd,
        rev,
        end_reason: reason,
        context,
        icmp: (flow.close & ICMP_KNOWN != 0).then_some(flow.icmp),
    }
}
