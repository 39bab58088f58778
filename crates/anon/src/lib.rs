//! # burstwatch-anon
//!
//! Keyed, prefix-preserving IP address pseudonyms, so that flow records and alerts can be
//! shared without naming subscribers while keeping their network structure: two addresses
//! share a `k`-bit prefix exactly when their pseudonyms do.
//!
//! The scheme is Crypto-PAn (J. Xu, J. Fan, M. Ammar, S. Moon, "Prefix-Preserving IP Address
//! Anonymization: Measurement-based Security Evaluation and a New Cryptography-based Scheme",
//! ICNP 2002) with AES-128. The 32-byte key is a 16-byte AES key followed by 16 bytes whose
//! encryption is the pad. Bit `i` of the pseudonym is bit `i` of the address XOR the first bit
//! of `AES(address bits 0..i ‖ pad bits i..128)`. IPv4 uses the first 32 positions of the
//! block, as in the published reference; IPv6 uses the same construction over all 128 bits.
//! Because bit `i` of the flip depends only on the bits before it, the holder of the key can
//! [reveal](Pseudonymizer::reveal) the original bit by bit.
//!
//! ```
//! use std::net::IpAddr;
//! use burstwatch_anon::Pseudonymizer;
//!
//! let key: [u8; 32] = core::array::from_fn(|i| i as u8);
//! let p = Pseudonymizer::new(&key);
//! let ip: IpAddr = "192.0.2.1".parse().unwrap();
//! let pseudo = p.pseudonymize(ip);
//! assert_eq!(pseudo.to_string(), "2.90.93.17");
//! assert_eq!(p.reveal(pseudo), ip);
//! ```
#![forbid(unsafe_code)]

mod key;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

pub use key::{format_key_hex, parse_key, KeyError, KEY_LEN};

/// A keyed, prefix-preserving address mapping (Crypto-PAn) and its inverse.
#[derive(Clone)]
pub struct Pseudonymizer {
    cipher: Aes128,
    /// The encrypted second half of the key, as a big-endian 128-bit number.
    pad: u128,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("Pseudonymizer { .. }")
    }
}

/// Mask of the first `bits` bits of a 128-bit number (`bits` in 0..=128).
#[inline]
fn prefix_mask(bits: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    }
}

impl Pseudonymizer {
    /// A pseudonymizer for a 32-byte key: AES key, then the pad seed.
    pub fn new(key: &[u8; KEY_LEN]) -> Pseudonymizer {
        let cipher = Aes128::new(GenericArray::from_slice(&key[..16]));
        let mut pad = GenericArray::clone_from_slice(&key[16..]);
        cipher.encrypt_block(&mut pad);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&pad);
        Pseudonymizer {
            cipher,
            pad: u128::from_be_bytes(bytes),
        }
    }

    /// Reads a key file: 32 raw bytes, or 64 hexadecimal digits (surrounding whitespace
    /// ignored).
    pub fn from_key_file(path: &std::path::Path) -> Result<Pseudonymizer, KeyError> {
        let bytes = key::read_key_file(path)?;
        let key = parse_key(&bytes).map_err(|e| e.with_path(path))?;
        Ok(Pseudonymizer::new(&key))
    }

    /// The cipher input for position `pos`: the first `pos` bits of `addr`, then the pad.
    #[inline]
    fn block(&self, addr: u128, pos: u32) -> GenericArray<u8, aes::cipher::consts::U16> {
        let m = prefix_mask(pos);
        GenericArray::from((addr & m | self.pad & !m).to_be_bytes())
    }

    /// The flip bits for the first `bits` positions of `addr` (left-aligned in 128 bits).
    fn flips(&self, addr: u128, bits: u32) -> u128 {
        // All inputs are known up front, so the blocks are encrypted together (the AES
        // back-ends pipeline several blocks at once).
        let mut blocks = [GenericArray::default(); 128];
        let n = bits as usize;
        for (pos, b) in (0..bits).zip(blocks.iter_mut()) {
            *b = self.block(addr, pos);
        }
        self.cipher.encrypt_blocks(&mut blocks[..n]);
        let mut flips = 0u128;
        for (pos, b) in (0..bits).zip(blocks.iter()) {
            flips |= u128::from(b[0] >> 7) << (127 - pos);
        }
        flips
    }

    /// Maps a left-aligned `bits`-bit address to its pseudonym.
    fn encode(&self, addr: u128, bits: u32) -> u128 {
        addr ^ self.flips(addr, bits)
    }

    /// Recovers a left-aligned `bits`-bit address from its pseudonym, one bit at a time.
    fn decode(&self, pseudo: u128, bits: u32) -> u128 {
        let mut orig = 0u128;
        for pos in 0..bits {
            let mut b = self.block(orig, pos);
            self.cipher.encrypt_block(&mut b);
            let bit = 1u128 << (127 - pos);
            orig |= (pseudo & bit) ^ (u128::from(b[0] >> 7) << (127 - pos));
        }
        orig
    }

    /// The pseudonym of an IPv4 address.
    pub fn pseudonymize_v4(&self, ip: Ipv4Addr) -> Ipv4Addr {
        let a = u128::from(u32::from(ip)) << 96;
        Ipv4Addr::from((self.encode(a, 32) >> 96) as u32)
    }

    /// The pseudonym of an IPv6 address.
    pub fn pseudonymize_v6(&self, ip: Ipv6Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.encode(u128::from(ip), 128))
    }

    /// The pseudonym of an address (same family).
    pub fn pseudonymize(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => IpAddr::V4(self.pseudonymize_v4(v4)),
            IpAddr::V6(v6) => IpAddr::V6(self.pseudonymize_v6(v6)),
        }
    }

    /// A keyed 64-bit tag of `v` (first half of `AES(v ‖ "burstwid")`): a stand-in for an
    /// identifier derived from addresses (such as an alert id, a hash of the pair), so that it
    /// cannot be used to test guesses of the original addresses without the key.
    pub fn tag_u64(&self, v: u64) -> u64 {
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(&v.to_be_bytes());
        block[8..].copy_from_slice(b"burstwid");
        let mut b = GenericArray::from(block);
        self.cipher.encrypt_block(&mut b);
        let mut out = [0u8; 8];
        out.copy_from_slice(&b[..8]);
        u64::from_be_bytes(out)
    }

    /// The original address of a pseudonym made with the same key.
    pub fn reveal(&self, pseudonym: IpAddr) -> IpAddr {
        match pseudonym {
            IpAddr::V4(v4) => {
                let a = u128::from(u32::from(v4)) << 96;
                IpAddr::V4(Ipv4Addr::from((self.decode(a, 32) >> 96) as u32))
            }
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(self.decode(u128::from(v6), 128))),
        }
    }
}

#[cfg(test)]
mod tests;
