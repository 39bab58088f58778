#!/usr/bin/env python3
"""Write a flood capture for deploy/bench/flood.sh: N minimum-size UDP/IPv6 Ethernet frames,
each from a random source in 2001:db8::/32 (96 random low bits: the chance of any repeat
in 5 M is about 1e-16) to one of a few
subscriber addresses in fd00::/8, one microsecond apart.

    flood_pcap.py OUT.pcap N [SEED]
"""

import os
import random
import struct
import sys

CHUNK = 65536
HOMES = [bytes.fromhex("fd00000000000%03x0000000000000001" % i) for i in range(1, 5)]
# Ethernet (locally administered MACs), IPv6 with an 8-byte UDP payload, hop limit 64.
ETH = bytes.fromhex("020000000002" "020000000001" "86dd")
IP6 = struct.pack("!IHBB", 0x6000_0000, 8, 17, 64)
FRAME = 14 + 40 + 8
REC = struct.Struct("<IIII")
SRC_PREFIX = bytes.fromhex("20010db8")


def main() -> None:
    out, n = sys.argv[1], int(sys.argv[2])
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    t0 = 1_700_000_000
    with open(out, "wb") as f:
        # pcap header: microsecond timestamps, snaplen 65535, Ethernet.
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        done = 0
        while done < n:
            k = min(CHUNK, n - done)
            low = rng.randbytes(12 * k)
            ports = rng.randbytes(2 * k)
            buf = bytearray()
            for i in range(k):
                src = low[12 * i : 12 * i + 12]
                us = done + i
                buf += REC.pack(t0 + us // 1_000_000, us % 1_000_000, FRAME, FRAME)
                buf += ETH + IP6 + SRC_PREFIX + src + HOMES[i & 3]
                buf += ports[2 * i : 2 * i + 2] + b"\x01\xbb\x00\x08\x00\x00"
            f.write(buf)
            done += k


if __name__ == "__main__":
    main()
