//! A minimal classic-pcap reader/writer for building test inputs (splitting, truncating).

/// A little- or big-endian microsecond/nanosecond pcap: file header and raw records.
pub struct Pcap {
    pub header: Vec<u8>,
    pub records: Vec<Vec<u8>>,
}

pub fn read(bytes: &[u8]) -> Pcap {
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let le = magic == 0xa1b2_c3d4 || magic == 0xa1b2_3c4d;
    let u32at = |b: &[u8], o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut off = 24;
    let mut records = Vec::new();
    while off + 16 <= bytes.len() {
        let incl = u32at(bytes, off + 8) as usize;
        let end = off + 16 + incl;
        assert!(end <= bytes.len(), "test input must be a clean pcap");
        records.push(bytes[off..end].to_vec());
        off = end;
    }
    Pcap {
        header: bytes[..24].to_vec(),
        records,
    }
}

pub fn write(header: &[u8], records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header.to_vec();
    for r in records {
        out.extend_from_slice(r);
    }
    out
}
