"""Watch benchmark: what a scan of a growing session costs as the session grows.

    .venv/bin/python bench/import_watch.py [--steps 200] [--lines 39]

One Claude Code session (spotter__tool_heavy.jsonl repeated `--steps` times over as one long
session, keys renamed per repeat, as bench/import_throughput.py's `--length` builds it) is
written into a watched folder (SQLite, a throwaway data dir) `--lines` lines at a time, with a
`watch.scan` after each append, the way `import_sessions --watch` follows a session while it
is written.

Prints, for the first and the last tenth of the scans: the bytes each scan read (the appended
bytes only: the watch resumes from the stored offset) and its median time; the ratio of the
two medians (target: under 2, flat as the file grows, where reading the file whole at each
scan grows with it); and, as the baseline measured in the same run, one whole-file re-read
of the finished session (what every scan cost before the watch resumed from offsets). A
session read while it is written is closed (categorised, scored, its example made) once, when
it has gone quiet: that scan's time is printed too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from django_env import setup  # noqa: E402
from import_throughput import FIXTURES, rewrite  # noqa: E402

SOURCE = FIXTURES / "spotter__tool_heavy.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lines", type=int, default=39, help="lines appended per scan")
    args = parser.parse_args()
    data = setup("trainingdash-bench-watch-")
    work = Path(tempfile.mkdtemp(prefix="trainingdash-watch-"))
    try:
        run(work, args.steps, args.lines)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)


def run(work: Path, steps: int, lines: int) -> None:
    import time_machine
    from django.utils import timezone

    from collection.importers.runner import import_file
    from collection.importers.watch import LIVE_SECONDS, scan
    from collection.models import Execution, ImportWatchFile

    finished = work / "finished.jsonl"
    rewrite(SOURCE, finished, copy=0, length=steps)
    raw = finished.read_bytes().splitlines(keepends=True)
    folder = work / "watched" / "project"
    folder.mkdir(parents=True)
    live = folder / "session.jsonl"
    live.write_bytes(b"")
    scans: list[tuple[int, int, float]] = []  # (file size, bytes read, seconds)
    for start in range(0, len(raw), lines):
        with live.open("ab") as growing:
            growing.write(b"".join(raw[start : start + lines]))
        began = time.perf_counter()
        result = scan([str(folder.parent)])
        seconds = time.perf_counter() - began
        read = sum(r.bytes for r in result.reports)
        scans.append((live.stat().st_size, read, seconds))
    with time_machine.travel(timezone.now() + timedelta(seconds=LIVE_SECONDS + 1)):
        began = time.perf_counter()
        settled = scan([str(folder.parent)])
        closing = time.perf_counter() - began
    assert settled.settled, "the quiet session was not closed"
    execution = Execution.objects.get()
    began = time.perf_counter()
    import_file(live)  # the old way: the whole file read again at a scan (nothing new in it)
    whole = time.perf_counter() - began
    report(scans, whole, execution.messages.count())
    checkpoint = len(json.dumps(ImportWatchFile.objects.get(path=str(live)).resume))
    print(f"  checkpoint stored for the next scan: {checkpoint / 1e3:.0f} KB")
    print(f"  closing the session once quiet (scored, its example made): {closing * 1e3:.0f} ms")


def report(scans: list[tuple[int, int, float]], whole: float, messages: int) -> None:
    tenth = max(1, len(scans) // 10)
    first, last = scans[:tenth], scans[-tenth:]

    def median(part: list[tuple[int, int, float]], index: int) -> float:
        return statistics.median(s[index] for s in part)

    print(f"{len(scans)} scans, final file {scans[-1][0] / 1e6:.1f} MB, {messages} messages")
    for name, part in (("first tenth", first), ("last tenth", last)):
        print(
            f"  {name:11}: file {part[0][0] / 1e6:6.2f}-{part[-1][0] / 1e6:6.2f} MB, "
            f"{median(part, 1) / 1e3:7.1f} KB read/scan, {median(part, 2) * 1e3:7.1f} ms/scan"
        )
    ratio = median(last, 2) / median(first, 2)
    print(f"  last/first median scan time: {ratio:.2f} (target < 2: flat as the file grows)")
    print(
        f"  baseline, the whole {scans[-1][0] / 1e6:.1f} MB file re-read at one scan: "
        f"{whole * 1e3:.0f} ms ({whole / median(last, 2):.0f}x a resumed scan)"
    )
    total = sum(s[1] for s in scans)
    print(f"  bytes read over all scans / final size: {total / scans[-1][0]:.3f} (target 1.0)")


if __name__ == "__main__":
    main()
