#!/usr/bin/env python3
"""fsync probe: the latency of one 4 KiB append + fdatasync on the disk that holds DIR.

    scripts/fsync-probe.py DIR [COUNT]      COUNT appends (default 500)

Prints one line: `fsync probe (DIR): 4 KiB append + fdatasync, N times: p50 X ms, p99 Y ms`.
A Raft write waits for at least one of these on the leader and on a majority, so this is
the floor under every put latency a benchmark on this disk shows.
"""
import os
import sys
import tempfile
import time


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    where = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) == 3 else 500
    if count < 1:
        sys.exit("error: COUNT must be at least 1")
    block = os.urandom(4096)
    times = []
    fd, path = tempfile.mkstemp(prefix="fsync-probe.", dir=where)
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()

    def pct(p):
        # Nearest rank, as the benchmark's percentiles.
        rank = max(1, min(len(times), -(-len(times) * p // 100)))
        return times[int(rank) - 1] * 1000

    print(f"fsync probe ({where}): 4 KiB append + fdatasync, {count} times: "
          f"p50 {pct(50):.2f} ms, p99 {pct(99):.2f} ms")


if __name__ == "__main__":
    main()
