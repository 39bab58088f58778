//! What the store holds instead of addresses: keyed tags.
//!
//! Three AES-128 keys are derived from the 32-byte pseudonym key (the one `burstwatch keygen`
//! writes and `--pseudonymize` uses): `AES_k1(label XOR k2)` for a label per use. A subscriber
//! becomes the first 8 bytes of `AES_sub(address)`, an endpoint the name of its set,
//! `bw:e:` and 16 hex digits of `AES_ep(address)`, a prefix `bw:p:` and those of
//! `AES_pfx(AES_pfx(masked address) XOR length)`. The first two digits are the name's Redis
//! Cluster hash tag (`bw:e:{3f}a1...`): a set lies in one of 256 hash slots, its bucket, so
//! that one script call can take the many sets of one bucket on a cluster. Without the key none of them can be matched
//! to an address (not even by trying all IPv4 addresses), and every sensor with the same key
//! names the same subscriber and endpoint alike.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128;

/// Bytes of a subscriber tag.
pub const TAG_LEN: usize = 8;

/// The keyed tags of one pseudonym key.
#[derive(Clone)]
pub struct Tags {
    sub: Aes128,
    ep: Aes128,
    pfx: Aes128,
}

impl std::fmt::Debug for Tags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tags { .. }") // never key material
    }
}

fn derive(key: &[u8; 32], label: &[u8; 16]) -> Aes128 {
    let master = Aes128::new(GenericArray::from_slice(&key[..16]));
    let mut block = GenericArray::clone_from_slice(label);
    for (b, k) in block.iter_mut().zip(&key[16..]) {
        *b ^= k;
    }
    master.encrypt_block(&mut block);
    Aes128::new(&block)
}

fn encrypt(c: &Aes128, input: [u8; 16]) -> [u8; 16] {
    let mut b = GenericArray::from(input);
    c.encrypt_block(&mut b);
    b.into()
}

/// A set of the store before it is named: its kind (`e` endpoint, `p` prefix) and tag.
pub type SetKey = (u8, [u8; TAG_LEN]);

/// The Redis key of a set: `bw:e:` or `bw:p:` and 16 hex digits, the first two of them in
/// braces (the hash tag of its [`bucket`]).
pub fn key_name(k: &SetKey) -> String {
    let hex = hex8(&k.1);
    format!("bw:{}:{{{}}}{}", char::from(k.0), &hex[..2], &hex[2..])
}

/// The bucket of a set: the first byte of its tag, which its name's hash tag spells. Sets of
/// one bucket lie in one Redis Cluster hash slot.
pub fn bucket(k: &SetKey) -> u8 {
    k.1[0]
}

/// The bucket of a set's name as [`key_name`] writes it (`None` for other names).
pub fn bucket_of_name(name: &str) -> Option<u8> {
    let open = name.find('{')?;
    let hex = name.get(open + 1..open + 3)?;
    if name.get(open + 3..open + 4) != Some("}") {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

fn first8(b: &[u8; 16]) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&b[..TAG_LEN]);
    out
}

fn hex8(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes[..8]
        .iter()
        .fold(String::with_capacity(16), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl Tags {
    /// Tags under a 32-byte pseudonym key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            sub: derive(key, b"bw-cluster-subsc"),
            ep: derive(key, b"bw-cluster-endpt"),
            pfx: derive(key, b"bw-cluster-prefx"),
        }
    }

    /// A subscriber's tag (address in key form, 16 bytes).
    pub fn subscriber(&self, addr: &[u8; 16]) -> [u8; TAG_LEN] {
        let b = encrypt(&self.sub, *addr);
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&b[..TAG_LEN]);
        out
    }

    /// An endpoint's set, as a [`SetKey`].
    pub fn endpoint_set(&self, addr: &[u8; 16]) -> SetKey {
        (b'e', first8(&encrypt(&self.ep, *addr)))
    }

    /// A prefix's set (masked address and length), as a [`SetKey`].
    pub fn prefix_set(&self, masked: &[u8; 16], len: u8) -> SetKey {
        let mut b = encrypt(&self.pfx, *masked);
        b[0] ^= len;
        (b'p', first8(&encrypt(&self.pfx, b)))
    }

    /// The name of an endpoint's set.
    pub fn endpoint_key(&self, addr: &[u8; 16]) -> String {
        key_name(&self.endpoint_set(addr))
    }

    /// The name of a prefix's set (masked address and length).
    pub fn prefix_key(&self, masked: &[u8; 16], len: u8) -> String {
        key_name(&self.prefix_set(masked, len))
    }

    /// A value that tells whether two sensors use the same key (stored once in the store).
    pub fn check_value(&self) -> String {
        format!(
            "{}{}",
            hex8(&encrypt(&self.ep, [0xff; 16])),
            hex8(&encrypt(&self.sub, [0xff; 16]))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_the_key_and_the_use() {
        let a = Tags::new(&[1; 32]);
        let b = Tags::new(&[2; 32]);
        let ip = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1];
        assert_eq!(a.subscriber(&ip), Tags::new(&[1; 32]).subscriber(&ip));
        assert_ne!(a.subscriber(&ip), b.subscriber(&ip));
        assert_ne!(a.endpoint_key(&ip), b.endpoint_key(&ip));
        assert_ne!(a.endpoint_key(&ip)[5..], a.prefix_key(&ip, 32)[5..]);
        assert_ne!(a.prefix_key(&ip, 24), a.prefix_key(&ip, 32));
        assert_ne!(a.check_value(), b.check_value());
        assert_eq!(a.endpoint_key(&ip).len(), 5 + 16 + 2);
    }

    #[test]
    fn names_carry_their_bucket_as_hash_tag() {
        let t = Tags::new(&[7; 32]);
        for i in 0..=255u8 {
            let ip = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, i];
            let set = t.endpoint_set(&ip);
            let name = key_name(&set);
            assert!(name.starts_with("bw:e:{"), "{name}");
            assert_eq!(bucket_of_name(&name), Some(bucket(&set)), "{name}");
            // The 16 digits of the tag, braces removed.
            let digits: String = name[5..]
                .chars()
                .filter(|c| *c != '{' && *c != '}')
                .collect();
            assert_eq!(digits, hex8(&set.1));
        }
        assert_eq!(bucket_of_name("bw:sensors"), None);
        assert_eq!(bucket_of_name("bw:e:{zz}00"), None);
    }
}
