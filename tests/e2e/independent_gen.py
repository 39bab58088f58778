#!/usr/bin/env python3
"""A traffic generator that shares nothing with burstwatch's own simulator, for checking the
detector on traffic it was not built around.

Usage: independent_gen.py SEED OUT.pcap TRUTH.json [hard]

Writes a nanosecond pcap (Ethernet, snaplen 96) of one randomised access network: 20-70
subscribers in 10.0.0.0/14 and 2001:db8:1::/48 browsing and downloading from a few popular
servers, with decoys (uploads to a popular service, symmetric peer-to-peer calls to rare
peers, backups longer than a burst to rare servers) and the positives: bursts of 2.5-40 MB at
2-60 Mbit/s ("hard": 2.3-12 MB at 1.6-6 Mbit/s, with an upstream call running beside them)
to rare endpoints, sometimes repeated, and beacons every 2-60 s with +-0-30 % jitter ("hard":
+-20-50 %), in one connection or one connection each. The truth lists positives and decoys.
"""
import ipaddress
import json
import random
import struct
import sys

seed = int(sys.argv[1]); out = sys.argv[2]; truth_path = sys.argv[3]
HARD = len(sys.argv) > 4 and sys.argv[4] == 'hard'
rng = random.Random(seed)
D = rng.uniform(400, 900)
T0 = 1_700_000_000.0 + seed * 10000
pkts = []

def ip4(s): return ipaddress.ip_address(s).packed

def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def frame(src, dst, proto, sport, dport, payload_len, flags=0x10, seq=0):
    v6 = ':' in src
    if proto == 6:
        l4 = struct.pack('!HHIIBBHHH', sport, dport, seq & 0xffffffff, 0, 5 << 4, flags, 65535, 0, 0)
    else:
        l4 = struct.pack('!HHHH', sport, dport, 8 + payload_len, 0)
    body = l4 + b'\0' * payload_len
    if v6:
        ip = struct.pack('!IHBB', 6 << 28, len(body), proto, 64) + ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
        eth = b'\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x86\xdd'
    else:
        h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(body), 0, 0x4000, 64, proto, 0, ip4(src), ip4(dst))
        h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
        ip = h
        eth = b'\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00'
    return eth + ip + body

SNAP = 96
def emit(t, src, dst, proto, sport, dport, plen, flags=0x10):
    if t < 0 or t > D: return
    f = frame(src, dst, proto, sport, dport, plen, flags)
    pkts.append((t, f[:SNAP], len(f)))

def tcp_transfer(t, sub, srv, port, up_bytes, down_bytes, rate_bps, sport=None, handshake=True, close=True):
    """One TCP connection moving bytes at a rate; ACKs the other way. Returns end time."""
    sport = sport or rng.randint(20000, 60000)
    if handshake:
        emit(t, sub, srv, 6, sport, port, 0, 0x02); emit(t + 0.02, srv, sub, 6, port, sport, 0, 0x12)
        emit(t + 0.04, sub, srv, 6, sport, port, 0, 0x10); t += 0.05
    # request
    emit(t, sub, srv, 6, sport, port, min(up_bytes, 500) if up_bytes < 5000 else 400, 0x18)
    t += 0.03
    for total, (a, b) in ((up_bytes, (sub, srv)), (down_bytes, (srv, sub))):
        if total < 5000:
            if total > 0 and (a, b) == (srv, sub):
                emit(t, a, b, 6, port if a == srv else sport, sport if a == srv else port, total, 0x18)
            continue
        n = total // 1400
        gap = 1400 * 8 / rate_bps
        tt = t
        for i in range(int(n)):
            jit = gap * rng.uniform(0.7, 1.3)
            tt += jit
            emit(tt, a, b, 6, sport if a == sub else port, port if a == sub else sport, 1400, 0x18)
            if i % 2 == 1:
                emit(tt + 0.01, b, a, 6, sport if b == sub else port, port if b == sub else sport, 0, 0x10)
        t = tt
    if close:
        emit(t + 0.05, sub, srv, 6, sport, port, 0, 0x11); emit(t + 0.07, srv, sub, 6, port, sport, 0, 0x11)
    return t

truth = {"duration": D, "positives": [], "decoys": []}
N = rng.randint(20, 70)
v6_share = rng.uniform(0, 0.4)
subs = []
for i in range(N):
    if rng.random() < v6_share:
        subs.append('2001:db8:1:%x::%x' % (rng.randint(1, 200), rng.randint(2, 9999)))
    else:
        subs.append('10.%d.%d.%d' % (rng.randint(0, 3), rng.randint(0, 255), rng.randint(2, 254)))
subs = list(dict.fromkeys(subs))
popular4 = ['203.0.113.%d' % rng.randint(1, 254) for _ in range(12)] + ['192.0.2.%d' % rng.randint(1, 254) for _ in range(8)]
popular6 = ['2001:db8:ffff::%x' % rng.randint(1, 5000) for _ in range(12)]
def pop_for(sub):
    p = popular6 if ':' in sub else popular4
    return p[min(int(rng.paretovariate(1.2)) - 1, len(p) - 1)]
rare_n = [0]
def rare_for(sub):
    rare_n[0] += 1
    k = rare_n[0]
    if ':' in sub:
        return '2001:db8:%x:%x::%x' % (0x8000 + k, rng.randint(0, 0xffff), rng.randint(1, 0xffff))
    return '198.%d.%d.%d' % (18 + (k % 2), (k * 37) % 256, rng.randint(1, 254))

# Background: browsing/downloads to popular servers, small uploads
for sub in subs:
    t = rng.uniform(0, 30)
    while t < D:
        srv = pop_for(sub)
        kind = rng.random()
        if kind < 0.7:
            t2 = tcp_transfer(t, sub, srv, 443, rng.randint(300, 2000), rng.randint(20_000, 1_000_000), rng.uniform(5e6, 50e6))
        elif kind < 0.85:
            t2 = tcp_transfer(t, sub, srv, 443, rng.randint(5_000, 400_000), rng.randint(500, 5000), rng.uniform(1e6, 10e6))
        else:
            # DNS-ish UDP
            emit(t, sub, srv, 17, rng.randint(1024, 65000), 53, rng.randint(30, 80)); t2 = t + 0.05
            emit(t2, srv, sub, 17, 53, rng.randint(1024, 65000), rng.randint(60, 300))
        t = max(t2, t) + rng.expovariate(1 / rng.uniform(3, 25))

def pick_subs(k):
    return rng.sample(subs, k)

# Decoys
v4subs = [x for x in subs if ':' not in x]
for sub in rng.sample(v4subs, min(len(v4subs), rng.randint(1, 3))):  # upload to a popular service
    srv = pop_for(sub); t = rng.uniform(60, D - 80)
    size = rng.randint(3_000_000, 40_000_000); rate = rng.uniform(5e6, 40e6)
    tcp_transfer(t, sub, srv, 443, size, 3000, rate)
    truth["decoys"].append({"kind": "upload_popular", "src": sub, "dst": srv, "t": t})
for sub in pick_subs(rng.randint(1, 3)):  # p2p call to a rare peer: symmetric
    peer = rare_for(sub); t = rng.uniform(30, D - 150); dur = rng.uniform(40, 140)
    rate = rng.uniform(0.8e6, 3e6); sp = rng.randint(10000, 60000); dp = rng.randint(10000, 60000)
    tt = t
    while tt < t + dur:
        emit(tt, sub, peer, 17, sp, dp, 1000); emit(tt + 0.003, peer, sub, 17, dp, sp, 1000)
        tt += 1000 * 8 / rate
    truth["decoys"].append({"kind": "p2p_call", "src": sub, "dst": peer, "t": t})
for sub in pick_subs(rng.randint(1, 2)):  # long backup to a rare server (sustained > 60 s)
    srv = rare_for(sub); t = rng.uniform(20, D - 200)
    rate = rng.uniform(4e6, 12e6); size = int(rate / 8 * rng.uniform(120, 180))
    tcp_transfer(t, sub, srv, 443, size, 3000, rate)
    truth["decoys"].append({"kind": "long_backup", "src": sub, "dst": srv, "t": t})

# Positives: bursts
used = set(truth_d["src"] for truth_d in truth["decoys"])
free = [s for s in subs if s not in used]
rng.shuffle(free)
for sub in free[:rng.randint(2, 5)]:
    if HARD and rng.random() < 0.6:
        relay = pop_for(sub); ct = rng.uniform(0, 60); cd = rng.uniform(200, 400); crate = rng.uniform(0.5e6, 1.5e6)
        sp = rng.randint(10000, 60000); tt = ct
        while tt < ct + cd:
            emit(tt, sub, relay, 17, sp, 3478, 900); emit(tt + 0.004, relay, sub, 17, 3478, sp, 900)
            tt += 900 * 8 / crate
    srv = rare_for(sub)
    reps = rng.choice([1, 1, 2, 3])
    t = rng.uniform(90, D - 150)
    port = rng.choice([443, 443, 8443, 4444, 9001])
    for r in range(reps):
        if t > D - 70: break
        rate = rng.uniform(1.6e6, 6e6) if HARD else rng.uniform(2e6, 60e6)
        size = rng.randint(2_300_000, 12_000_000) if HARD else rng.randint(2_500_000, 40_000_000)
        while size * 8 / rate > 45: size = int(size * 0.7)
        if size < 2_500_000: size = 2_500_000; rate = max(rate, size * 8 / 40)
        t_end = tcp_transfer(t, sub, srv, port, size, 2000, rate)
        truth["positives"].append({"kind": "burst", "src": sub, "dst": srv, "t": t, "t_end": t_end,
                                   "bytes": size, "rate_mbps": rate / 1e6})
        t = t_end + rng.uniform(40, 200)

# Positives: beacons
for sub in free[6:6 + rng.randint(1, 3)]:
    srv = rare_for(sub)
    period = min(rng.choice([rng.uniform(2, 10), rng.uniform(10, 60)]), (D - 40) / 13)
    jitter = rng.uniform(0.2, 0.5) if HARD else rng.uniform(0, 0.3)
    inconn = rng.random() < 0.5
    t = rng.uniform(0, 30); n = 0; sport = rng.randint(20000, 60000)
    if inconn:
        emit(t, sub, srv, 6, sport, 443, 0, 0x02); emit(t + 0.02, srv, sub, 6, 443, sport, 0, 0x12); emit(t + 0.04, sub, srv, 6, sport, 443, 0, 0x10)
    req = rng.randint(150, 700); resp = rng.randint(100, 3000)
    while t < D - 1:
        if inconn:
            emit(t, sub, srv, 6, sport, 443, req + rng.randint(-20, 20), 0x18)
            emit(t + 0.05, srv, sub, 6, 443, sport, resp + rng.randint(-50, 50), 0x18)
            emit(t + 0.06, sub, srv, 6, sport, 443, 0, 0x10)
        else:
            tcp_transfer(t, sub, srv, 443, req, resp, 1e6)
        n += 1
        t += period * (1 + rng.uniform(-jitter, jitter))
    truth["positives"].append({"kind": "beacon", "src": sub, "dst": srv, "period": period, "jitter": jitter,
                               "in_connection": inconn, "events": n})

pkts.sort(key=lambda p: p[0])
with open(out, 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xa1b23c4d, 2, 4, 0, 0, SNAP, 1))
    for t, data, wl in pkts:
        ts = T0 + t
        sec = int(ts); ns = int((ts - sec) * 1e9)
        f.write(struct.pack('<IIII', sec, ns, len(data), wl)); f.write(data)
truth["packets"] = len(pkts); truth["subscribers"] = len(subs); truth["t0"] = T0
json.dump(truth, open(truth_path, 'w'), indent=1)
print(f"seed {seed}: {len(pkts)} packets, {len(subs)} subscribers, {D:.0f} s, "
      f"{sum(1 for p in truth['positives'] if p['kind']=='burst')} bursts, "
      f"{sum(1 for p in truth['positives'] if p['kind']=='beacon')} beacons, {len(truth['decoys'])} decoys")
