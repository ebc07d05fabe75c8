#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1 OR BSD-2-Clause
"""Write the seed corpus of tests/fuzz/fuzz.c into tests/fuzz/corpus/.

Each seed is a short scenario in the harness's input encoding (an opcode byte, then the
bytes its operation reads, in the order fuzz.c reads them). Run it again after changing
the encoding; libFuzzer takes the seeds from there.
"""
import os
import struct

OP = dict(init=0, ctl=1, get=3, wait=5, commit=6, close=7, obj=8, poke=9, aio=10, misc=11,
          entries=12)
KIND = dict(none=0, tcp=1, udp=2, unix_stream=3, unix_dgram=4, pipe=5, eventfd=6, file=7,
            dir=8, listener=9)
T = dict(socket=0, inode=1, timer=2, poll=3, aio=5, pipe=6, signal=7, unotify=9, bad=10)
ADD, REMOVE, MODIFY, READY = 0, 1, 2, 3
ONESHOT, WAKEUP_ALL, ET, LAST_CHECK, ALWAYS_QUEUE, REQ_READY = 1, 2, 4, 8, 16, 32


def u32(v):
    return struct.pack(">I", v & 0xffffffff)


def init(slot, ring=0, size=0):
    """kevent_init into queue slot; ring: 0 none, 1 a ring of size events."""
    return bytes([OP["init"], slot, 1 if ring else 0, size])


def obj(slot, kind):
    return bytes([OP["obj"], slot, KIND[kind]])


def poke(slot, what, length=8):
    """what: 0 write fd, 1 write peer, 2 read, 3 shutdown, 4 close peer, 5 a directory's
    entry (length & 4: remove it), a file's mode, or (length & 2) the file itself, 6 connect
    to a listener, 7 raise SIGWINCH (odd length) or SIGURG."""
    return bytes([OP["poke"], slot, what, length - 1])


def fd_of(slot, peer=False):
    """A watch-fd byte naming object slot's fd (or peer)."""
    return (slot << 3) | (4 if peer else 0)


def queue_fd(q):
    return (q << 3) | 5


def event(bits):
    """An event byte: bits (< 64) of the type's mask."""
    if bits == 0:
        return bytes([0])
    return bytes([2 | ((bits & ~1) << 2)]) if bits & 1 else bytes([3]) + u32(bits)


def entry(type_, idbytes, bits, flags=0, user=0):
    return bytes([T[type_], flags & 0x3f]) + idbytes + event(bits) + bytes([user])


def fd_entry(type_, watch, bits, flags=0, user=0):
    return entry(type_, bytes([watch, 0]), bits, flags, user)


def unotify(ident, bits=1, flags=0, user=0):
    return entry("unotify", struct.pack(">Q", ident), bits, flags, user)


def timer(sec, ns_index, bits=1, flags=0):
    """ns_index into fuzz.c's table: 0 0, 1 1 ms, 2 2 ms, 3 500 ms, 4 999999999, 5 1e9."""
    return entry("timer", bytes([sec | ns_index << 2]), bits, flags)


def signal(index, nomask=False, flags=0):
    """index into fuzz.c's table: 0 SIGWINCH, 1 SIGURG, 5 0, 6 SIGKILL, 10 65."""
    return entry("signal", bytes([index | (0x80 if nomask else 0)]), 1, flags)


def ctl(q, cmd, *entries):
    return bytes([OP["ctl"], q, cmd, len(entries)]) + b"".join(entries)


def get(q, max_nr=16, min_nr=0, timeout=0, mode=0):
    """timeout byte: 0 {0,0}, 1 then a byte of 4 us units, 2 forever (min 0), 3..5 invalid,
    6 far, 7 near LONG_MAX (FUZZ_KNOWN=1), 0x80 ABSTIME."""
    t = bytes([timeout]) + (bytes([250]) if timeout % 8 == 1 else b"")
    t += u32(2) if timeout & 0xc0 == 0xc0 else b""
    return bytes([OP["get"], q, mode, max_nr, min_nr]) + t


def wait(q, num=8, timeout=0):
    return bytes([OP["wait"], q, 0, num, timeout]) + (bytes([250]) if timeout % 8 == 1 else b"")


def commit(q, mode=0, k=0, to=0):
    """mode % 4: 0 all read, 1 uidx + k, 3 uidx again; mode & 4: to as given; bits 4-5: over
    0 ring_over, 2 ring_over - 1."""
    return bytes([OP["commit"], q, mode, k]) + u32(to)


def close(q):
    return bytes([OP["close"], q])


def misc(q, m):
    """m % 3: 0 kevent_stats (m & 4: NULL), 1 set_spin ((m >> 2) % 4: 0, 1, 10 us, too
    long), 2 set_defer_wakeup ((m >> 2) % 3)."""
    return bytes([OP["misc"], q, m])


SEEDS = {
    "unotify-ring": init(0, 1, 8) + ctl(0, ADD, unotify(1, 1, REQ_READY | ALWAYS_QUEUE),
                                        unotify(2, 0xf)) + get(0) + commit(0) +
    ctl(0, READY, unotify(2, 0xf), unotify(3)) + wait(0) + commit(0) + misc(0, 0) + close(0),
    "ring-full": init(1, 1, 2) + ctl(1, ADD, *[unotify(i, 1, REQ_READY | ALWAYS_QUEUE)
                                              for i in range(5)]) + get(1, 8) + commit(1, 3) +
    commit(1, 0) + ctl(1, READY, unotify(1), unotify(2), unotify(3)) + wait(1, 8) +
    commit(1, 1, 1) + commit(1, 0x20) + get(1, 8) + misc(1, 0),
    "unix-stream": obj(0, "unix_stream") + init(0) +
    ctl(0, ADD, fd_entry("socket", fd_of(0), 1), fd_entry("socket", fd_of(0, True), 4, ALWAYS_QUEUE)) +
    poke(0, 1) + get(0) + poke(0, 2) + get(0) + poke(0, 4) + get(0) + close(0),
    "tcp-ring": obj(1, "tcp") + init(1, 1, 4) +
    ctl(1, ADD, fd_entry("socket", fd_of(1), 5, ALWAYS_QUEUE)) + poke(1, 1, 64) + get(1, 8) +
    wait(1) + commit(1) + poke(1, 3) + get(1) + poke(1, 4) + get(1, 8, 1, 1) + commit(1),
    "udp-et": obj(2, "udp") + init(2) + ctl(2, ADD, fd_entry("socket", fd_of(2), 1, ET),
                                            fd_entry("socket", fd_of(2, True), 1, LAST_CHECK)) +
    poke(2, 1) + poke(2, 0) + get(2) + poke(2, 1) + get(2) + poke(2, 2) + get(2) +
    ctl(2, MODIFY, fd_entry("socket", fd_of(2), 5, ONESHOT)) + get(2) +
    ctl(2, REMOVE, fd_entry("socket", fd_of(2), 1)),
    "pipe-poll": obj(3, "pipe") + obj(4, "eventfd") + init(0) +
    ctl(0, ADD, fd_entry("pipe", fd_of(3), 1), fd_entry("poll", fd_of(4), 1),
        fd_entry("poll", fd_of(3, True), 4, ALWAYS_QUEUE)) +
    poke(3, 1) + poke(4, 0) + get(0) + poke(3, 2) + poke(4, 2) + get(0) + poke(3, 4) + get(0),
    "timer": init(0, 1, 16) + ctl(0, ADD, timer(0, 1, 1, ONESHOT), timer(0, 2), timer(0, 0),
                                   timer(1, 5)) + get(0, 8, 1, 1) + wait(0, 8, 1) + commit(0) +
    ctl(0, MODIFY, timer(0, 2, 1, ONESHOT)) + get(0, 8, 1, 1) + close(0),
    "inode": obj(5, "dir") + obj(6, "file") + init(3) +
    ctl(3, ADD, fd_entry("inode", fd_of(5), 3), fd_entry("inode", fd_of(6), 0xc)) +
    poke(5, 5, 1) + poke(6, 0) + poke(6, 5) + get(3) + poke(5, 5, 5) + get(3) +
    bytes([OP["entries"], 3]) + fd_entry("inode", fd_of(5), 3) + bytes([3]) +
    poke(6, 5, 3) + get(3) + get(3),
    "signal": init(0) + ctl(0, ADD, signal(0), signal(1, True), signal(5), signal(6), signal(10)) +
    poke(0, 7, 2) + poke(0, 7, 1) + get(0) + ctl(0, REMOVE, signal(0)) + poke(0, 7, 2) + get(0),
    "aio": obj(1, "tcp") + obj(6, "file") + init(2) +
    bytes([OP["aio"], 2, fd_of(1), fd_of(6), 0, 2]) + poke(1, 1) +
    bytes([OP["aio"], 2, fd_of(1), fd_of(6), 3, 3]) + get(2, 8, 1, 1) + poke(1, 2) +
    get(2, 8, 1, 1) + close(2),
    "bad-input": init(0, 1, 1) + init(0, 0, 3) + bytes([OP["init"], 1, 0x80, 0]) + u32(1) +
    ctl(0, 4) + ctl(0xc0, ADD, unotify(1)) + bytes([OP["ctl"], 0, ADD, 0xf3]) +
    bytes([OP["ctl"], 0, ADD, 0xff]) + get(0, 4, 0, 3) + get(0, 4, 0, 4) + get(0, 4, 0, 5) +
    get(0, 4, 0, 0xc0) + get(0, 4, 0, 0, 1) + get(0, 4, 0, 0, 4) + commit(0, 4, 0, 7) +
    commit(0xe0) + close(0xd0) + misc(0xa0, 1) + misc(0, 12) + misc(0, 13) + misc(0, 11) +
    ctl(0, ADD, entry("bad", struct.pack(">Q", 1), 1), unotify(1, 1, 0)),
    "fd-reuse": obj(0, "unix_stream") + init(0) + ctl(0, ADD, fd_entry("socket", fd_of(0), 1)) +
    obj(0, "none") + obj(0, "unix_dgram") + poke(0, 1) + get(0) +
    ctl(0, ADD, fd_entry("socket", fd_of(0), 1)) + poke(0, 1) + get(0) +
    ctl(0, MODIFY, fd_entry("socket", fd_of(0), 1)) + obj(0, "tcp") + poke(0, 1) + get(0),
    "queue-watched": init(0) + init(1) +
    ctl(0, ADD, fd_entry("poll", queue_fd(1), 1), fd_entry("poll", queue_fd(0), 1),
        fd_entry("socket", queue_fd(1), 1)) +
    ctl(1, ADD, unotify(9, 1, REQ_READY | ALWAYS_QUEUE)) + get(0) + get(1) + close(1) + get(0),
    "listener": obj(7, "listener") + init(0) +
    ctl(0, ADD, fd_entry("socket", fd_of(7), 2), fd_entry("socket", fd_of(7), 1, 0, 1)) +
    poke(7, 6) + get(0) + poke(7, 6) + get(0) + poke(7, 4) + get(0),
    # Issue 10 item 9: a relative timeout near LONG_MAX overflows (UBSan) with FUZZ_KNOWN=1.
    "longmax-timeout": init(0) + get(0, 4, 0, 7),
    "spin-defer": init(0) + misc(0, 10) + misc(0, 5) + obj(0, "unix_dgram") +
    ctl(0, ADD, fd_entry("socket", fd_of(0), 1)) + poke(0, 1) + get(0, 4, 1, 1) + misc(0, 2) +
    get(0, 4, 1, 1) + misc(0, 0),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
