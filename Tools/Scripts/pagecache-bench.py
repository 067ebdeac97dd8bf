#!/usr/bin/env python3
"""mmapkit's page-cache commands against vmtouch, side by side (make bench).

Each repetition runs every implementation of a workload once, in rotated order, as a child
process started with posix_spawn; wall time is perf_counter around the spawn and the wait.
Repetition 0 is a discarded warm-up. Peak RSS comes from GNU time in three separate, untimed
runs of each implementation. The report gives the median and min-max of each implementation,
the median (and min-max) of the per-repetition ratio to vmtouch, and the median peak RSS. The
implementations' results must agree (the same totals, the same state afterwards); a mismatch
fails the run with status 1.

evict has a third row, its raw-syscall baseline: evict-syscalls.c (beside this script, built
here with cc -O2 -static) makes the system calls `mmapkit evict` makes, in its order, and
nothing else; the gap between it and mmapkit is the cost of the Swift program, not the kernel's.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

RESIDENT = re.compile(rb"Resident Pages: (\d+)/(\d+)")
FILES = re.compile(rb"Files: (\d+)")


RSS_FILE = os.path.join(tempfile.gettempdir(), f"pagecache-bench-rss-{os.getpid()}")
OUT_FILE = os.path.join(tempfile.gettempdir(), f"pagecache-bench-out-{os.getpid()}")


def run(argv):
    """Runs argv once, timed; returns (seconds, stdout bytes, exit status).

    The child is started with posix_spawn (glibc's clone with CLONE_VFORK: it costs the same
    whatever the size of this Python process), its stdout goes to a file and its stderr to
    /dev/null, and the clock covers the spawn and the wait only. Nothing else runs in between.
    """
    program = shutil.which(argv[0]) or argv[0]
    actions = [
        (os.POSIX_SPAWN_OPEN, 1, OUT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    start = time.perf_counter()
    pid = os.posix_spawn(program, argv, os.environ, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    seconds = time.perf_counter() - start
    with open(OUT_FILE, "rb") as f:
        out = f.read()
    return seconds, out, os.waitstatus_to_exitcode(status)


def peak_rss(argv):
    """Peak RSS of one run of argv, in KiB, from GNU time (-f %M), in a run of its own.

    A child forked or spawned from this Python process would report Python's own peak (the
    kernel carries maxrss across fork and exec), so GNU time, a small C program, runs it; its
    cost stays out of the timed runs.
    """
    subprocess.run(["/usr/bin/time", "-o", RSS_FILE, "-f", "%M"] + argv, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    with open(RSS_FILE) as f:
        return int(f.read().strip().splitlines()[-1])


def summary(out):
    resident = RESIDENT.search(out)
    files = FILES.search(out)
    return (
        int(files.group(1)) if files else None,
        int(resident.group(2)) if resident else None,
    )


def resident_pages(path):
    """Resident pages of path, by mincore through vmtouch (the oracle)."""
    out = subprocess.run(["vmtouch", path], capture_output=True).stdout
    match = RESIDENT.search(out)
    return int(match.group(1)), int(match.group(2))


def fadvise(path, advice):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, advice)
    finally:
        os.close(fd)


def read_all(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def make_data(path, size):
    """BENCHMARKS.md's data-1g pattern: byte i = (i * 2654435761 mod 2^64) >> 24, truncated."""
    import numpy as np

    chunk = 64 << 20
    with open(path, "wb") as f:
        for start in range(0, size, chunk):
            i = np.arange(start, min(size, start + chunk), dtype=np.uint64)
            f.write(((i * np.uint64(2654435761)) >> np.uint64(24)).astype(np.uint8).tobytes())


def fmt(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.2f} s"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mmapkit", default="Tools/.build/release/mmapkit")
    parser.add_argument("--vmtouch", default="vmtouch")
    parser.add_argument("--tree", default="/usr/lib")
    parser.add_argument("--size", type=int, default=1 << 30, help="bytes of the touch/evict file (default 1 GiB)")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="64 MiB and 3 repetitions")
    parser.add_argument(
        "--workload",
        action="append",
        choices=["residency", "touch", "evict"],
        help="run only this workload (repeatable; default: all three)",
    )
    args = parser.parse_args()
    if args.quick:
        args.size, args.repetitions = 64 << 20, 3
    mm, vt = args.mmapkit, args.vmtouch
    workdir = tempfile.mkdtemp(prefix="mmapkit-pagecache-bench-")
    data = os.path.join(workdir, "data-1g")
    make_data(data, args.size)
    os.sync()

    # name, {implementation: argv}, prepare (untimed, before each run), check (after each run)
    def cold():
        fadvise(data, os.POSIX_FADV_DONTNEED)

    def warm():
        read_all(data)

    pages = (args.size + 4095) // 4096
    # The raw-syscall baseline of evict: mmapkit's system calls from a static C program.
    raw_evict = {}
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evict-syscalls.c")
    raw_binary = os.path.join(workdir, "evict-syscalls")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler and subprocess.run([compiler, "-O2", "-static", "-o", raw_binary, source]).returncode == 0:
        raw_evict = {"raw syscalls (C)": [raw_binary, data]}
    else:
        print("note: no C compiler (or no static libc): evict runs without its raw-syscall row", file=sys.stderr)
    workloads = [
        (
            f"residency {args.tree}",
            {
                "vmtouch": [vt, args.tree],
                "mmapkit -s": [mm, "residency", "-s", args.tree],
                "mmapkit (line per file)": [mm, "residency", args.tree],
            },
            lambda: None,
            lambda name, out: summary(out),
        ),
        (
            f"touch {args.size >> 20} MiB",
            {"vmtouch": [vt, "-t", data], "mmapkit": [mm, "touch", data]},
            cold,
            lambda name, out: resident_pages(data) == (pages, pages),
        ),
        (
            f"evict {args.size >> 20} MiB",
            {"vmtouch": [vt, "-e", data], "mmapkit": [mm, "evict", data]} | raw_evict,
            warm,
            lambda name, out: resident_pages(data) == (0, pages),
        ),
    ]

    if args.workload:
        workloads = [w for w in workloads if w[0].split()[0] in args.workload]

    rows = []
    failed = False
    for name, implementations, prepare, check in workloads:
        names = list(implementations)
        times = {n: [] for n in names}
        rss = {n: [] for n in names}
        ratios = {n: [] for n in names}
        results = {}
        for repetition in range(args.repetitions + 1):
            order = names[repetition % len(names):] + names[: repetition % len(names)]
            this = {}
            for impl in order:
                prepare()
                seconds, out, status = run(implementations[impl])
                verdict = check(impl, out)
                results.setdefault(impl, verdict)
                if status != 0 or verdict in (False, None) or verdict != results[impl]:
                    print(f"error: {name} / {impl}: exit {status}, check {verdict}", file=sys.stderr)
                    failed = True
                this[impl] = seconds
                if repetition > 0:
                    times[impl].append(seconds)
            if repetition > 0:
                for impl in names:
                    ratios[impl].append(this[impl] / this["vmtouch"])
            print(f"\r{name}: repetition {repetition}/{args.repetitions}", end="", file=sys.stderr)
        # Peak RSS in runs of their own (three each, after the same preparation), untimed.
        for impl in names:
            for _ in range(3):
                prepare()
                rss[impl].append(peak_rss(implementations[impl]))
        print("\r\033[K", end="", file=sys.stderr)
        if len({str(v) for v in results.values()}) > 1:
            print(f"error: {name}: implementations disagree: {results}", file=sys.stderr)
            failed = True
        for impl in names:
            rows.append(
                (
                    name,
                    impl,
                    statistics.median(times[impl]),
                    min(times[impl]),
                    max(times[impl]),
                    statistics.median(ratios[impl]),
                    min(ratios[impl]),
                    max(ratios[impl]),
                    statistics.median(rss[impl]),
                )
            )
    os.remove(data)
    if os.path.exists(raw_binary):
        os.remove(raw_binary)
    os.rmdir(workdir)
    os.remove(RSS_FILE)
    os.remove(OUT_FILE)

    print(f"{args.repetitions} repetitions (after a warm-up), interleaved, order rotated; ratio = paired median")
    print("| workload | implementation | median | spread (min–max) | ratio to vmtouch (min–max) | peak RSS |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for workload, impl, median, low, high, ratio, rlow, rhigh, peak in rows:
        print(
            f"| {workload} | {impl} | {fmt(median)} | {fmt(low)} – {fmt(high)} | "
            f"{ratio:.2f}x ({rlow:.2f}–{rhigh:.2f}) | {peak / 1024:.1f} MiB |"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
