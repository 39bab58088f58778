//! Payload bytes: TLS application-data records, DNS messages, NTP packets.

use crate::world::POOL_MASK;

/// Fill `b` with one TLS 1.2/1.3 application-data record (opaque bytes from the pool), or with
/// plain pool bytes when too short for a record header.
#[inline]
pub(super) fn tls_payload(b: &mut [u8], pool: &[u8], r: usize) {
    let n = b.len();
    let off = r & POOL_MASK;
    b.copy_from_slice(&pool[off..off + n]);
    if n > 5 {
        b[0] = 0x17;
        b[1] = 3;
        b[2] = 3;
        b[3..5].copy_from_slice(&((n - 5) as u16).to_be_bytes());
    }
}

/// Write a DNS query or answer for the name of server `name` into `b`; returns its length.
pub(super) fn dns_message(
    b: &mut [u8],
    txid: u16,
    response: bool,
    name: u32,
    v6: bool,
    answer: &[u8; 16],
    ttl: u32,
) -> usize {
    const PREFIX: [&[u8]; 6] = [b"www", b"cdn", b"api", b"img", b"static", b"edge"];
    const DOMAIN: [&[u8]; 3] = [b"example", b"example", b"example"];
    const TLD: [&[u8]; 3] = [b"com", b"net", b"org"];
    b[0..2].copy_from_slice(&txid.to_be_bytes());
    b[2..4].copy_from_slice(&(if response { 0x8180u16 } else { 0x0100 }).to_be_bytes());
    b[4..12].copy_from_slice(&[0, 1, 0, u8::from(response), 0, 0, 0, 0]);
    let mut i = 12;
    // First label: prefix + decimal server number.
    let p = PREFIX[(name % 6) as usize];
    let mut digits = [0u8; 10];
    let mut nd = 0;
    let mut v = name;
    loop {
        digits[nd] = b'0' + (v % 10) as u8;
        nd += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    b[i] = (p.len() + nd) as u8;
    b[i + 1..i + 1 + p.len()].copy_from_slice(p);
    i += 1 + p.len();
    for d in digits[..nd].iter().rev() {
        b[i] = *d;
        i += 1;
    }
    for label in [DOMAIN[(name % 3) as usize], TLD[(name % 3) as usize]] {
        b[i] = label.len() as u8;
        b[i + 1..i + 1 + label.len()].copy_from_slice(label);
        i += 1 + label.len();
    }
    b[i] = 0;
    i += 1;
    let qtype: u16 = if v6 { 28 } else { 1 };
    b[i..i + 2].copy_from_slice(&qtype.to_be_bytes());
    b[i + 2..i + 4].copy_from_slice(&1u16.to_be_bytes());
    i += 4;
    if response {
        let rdlen = if v6 { 16 } else { 4 };
        b[i..i + 2].copy_from_slice(&0xc00cu16.to_be_bytes());
        b[i + 2..i + 4].copy_from_slice(&qtype.to_be_bytes());
        b[i + 4..i + 6].copy_from_slice(&1u16.to_be_bytes());
        b[i + 6..i + 10].copy_from_slice(&ttl.to_be_bytes());
        b[i + 10..i + 12].copy_from_slice(&(rdlen as u16).to_be_bytes());
        b[i + 12..i + 12 + rdlen].copy_from_slice(&answer[..rdlen]);
        i += 12 + rdlen;
    }
    i
}

/// Write a 48-byte NTPv4 client (`up`) or server packet.
pub(super) fn ntp_message(b: &mut [u8], up: bool, ts_ns: i64, pool: &[u8], r: usize) {
    b.fill(0);
    b[0] = if up { 0x23 } else { 0x24 };
    let ntp_secs = (ts_ns.div_euclid(1_000_000_000) + 2_208_988_800) as u32;
    let frac = ((ts_ns.rem_euclid(1_000_000_000) as u64) << 32) / 1_000_000_000;
    let stamp = (u64::from(ntp_secs) << 32) | frac;
    if up {
        b[2] = 6; // poll
        b[3] = 0xe9; // precision
    } else {
        b[1] = 2; // stratum
        b[2] = 6;
        b[3] = 0xe9;
        b[4..12].copy_from_slice(&[0, 0, 0, 0x20, 0, 0, 0, 0x30]);
        let off = r & POOL_MASK;
        b[12..16].copy_from_slice(&pool[off..off + 4]); // reference id
        let refts = stamp - (64u64 << 32);
        b[16..24].copy_from_slice(&refts.to_be_bytes());
        b[32..40].copy_from_slice(&stamp.to_be_bytes()); // receive
    }
    b[40..48].copy_from_slice(&stamp.to_be_bytes()); // transmit
}
