//! Fuzz the frame decoder: the first byte picks a link type, the rest is the captured frame.
#![no_main]

use burstwatch_wire::{
    decode, has_ports, Decoded, Frag, LinkType, PacketMeta, MAX_TUNNELS, MAX_VLANS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let supported = LinkType::SUPPORTED;
    let link = supported[usize::from(selector) % supported.len()];
    let mut meta = PacketMeta::default();
    if let Ok(Decoded::Ip) = decode(link, frame, &mut meta) {
        assert!(meta.payload_len <= meta.ip_len);
        if !has_ports(meta.proto) || matches!(meta.frag, Frag::Later { .. }) {
            assert_eq!((meta.sport, meta.dport), (0, 0));
        }
        assert!(usize::from(meta.vlan_count) <= MAX_VLANS);
        assert!(usize::from(meta.tunnel_count) <= MAX_TUNNELS);
    }
});
