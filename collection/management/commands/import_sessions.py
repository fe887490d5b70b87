"""Import agent sessions from files, folders (walked recursively) and globs.

    manage.py import_sessions ~/.claude/projects 'logs/**/*.jsonl' run.traj

Every file is tried, each session in its own transaction, whatever fails elsewhere; the report
lists each problem as file:line: reason. The exit status is 1 when there were errors, so that
scripts notice (`--exit-zero` to report them and still exit 0, say for a cron job over a folder
Claude Code is still writing to); `--fail-fast` stops after the first file with an error.

    manage.py import_sessions --watch                 # follow ~/.claude/projects until Ctrl-C
    manage.py import_sessions --watch logs/ --interval 2 --scans 10

`--watch` imports sessions as they are written, resuming from the offsets stored at the last
scan (see collection/importers/watch.py); `--scans N` stops after N scans.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from collection.importers import IMPORTERS, import_paths
from collection.importers.runner import WALKED_SUFFIXES
from collection.importers.watch import DEFAULT_INTERVAL, DEFAULT_ROOT, ScanResult, watch


class Command(BaseCommand):
    help = (
        "Import Claude Code transcripts, stream-json logs, SWE-agent and OpenHands "
        "trajectories from files, folders and globs."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("paths", nargs="*", metavar="PATH", help="file, folder or glob")
        parser.add_argument(
            "--watch",
            nargs="?",
            const=DEFAULT_ROOT,
            metavar="PATH",
            help=f"follow a folder and import sessions as they are written ({DEFAULT_ROOT})",
        )
        parser.add_argument(
            "--interval", type=float, default=DEFAULT_INTERVAL, help="seconds between scans"
        )
        parser.add_argument("--scans", type=int, help="with --watch: stop after this many scans")
        parser.add_argument("--importer", choices=sorted(IMPORTERS), help="don't sniff: use this")
        parser.add_argument("--dry-run", action="store_true", help="read all, store nothing")
        parser.add_argument("--fail-fast", action="store_true", help="stop at the first error")
        parser.add_argument("--exit-zero", action="store_true", help="exit 0 despite errors")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["watch"]:
            self._watch([options["watch"], *options["paths"]], options)
            return
        if not options["paths"]:
            raise CommandError("give a PATH to import, or --watch [PATH] to follow a folder")
        # disable=None: the bar shows on a terminal only, never in logs or pipes.
        with tqdm(
            unit="B", unit_scale=True, file=sys.stderr, disable=options["no_progress"] or None
        ) as bar:
            report = import_paths(
                options["paths"],
                importer=options["importer"],
                dry_run=options["dry_run"],
                fail_fast=options["fail_fast"],
                progress=bar,
            )
        style = self.style.SUCCESS if report.ok else self.style.WARNING
        self.stdout.write(style(report.summary()))
        if not report.sessions and not report.errors:
            # A folder of nothing importable is a mistake worth a failing exit, not a silent 0.
            raise CommandError(_nothing_found(options["paths"], len(report.ignored)))
        if report.errors and not options["exit_zero"]:
            raise CommandError(f"{len(report.errors)} error(s) while importing")

    def _watch(self, roots: list[str], options: dict[str, Any]) -> None:
        if options["dry_run"] or options["importer"]:
            raise CommandError(
                "--watch imports for real, sniffing each file: no --dry-run, --importer"
            )
        if options["interval"] <= 0 or (options["scans"] is not None and options["scans"] < 1):
            raise CommandError("--interval must be above 0 and --scans at least 1")
        self.stdout.write(
            f"watching {', '.join(roots)} every {options['interval']}s (Ctrl-C stops)"
        )
        self._missing: set[str] = set()
        try:
            watch(
                roots, interval=options["interval"], scans=options["scans"], on_scan=self._scanned
            )
        except KeyboardInterrupt:
            self.stdout.write("stopped; the next watch resumes from the stored offsets")

    def _scanned(self, result: ScanResult) -> None:
        # Said once, not every few seconds: the folder may well appear later.
        for root in sorted(set(result.missing_roots) - self._missing):
            self.stderr.write(f"no such folder (yet): {root}")
        self._missing = set(result.missing_roots)
        if result.changed or result.settled:
            self.stdout.write(result.summary())
        for error in result.errors:
            self.stderr.write(f"  {error}")


def _nothing_found(paths: list[str], ignored: int) -> str:
    where = ", ".join(paths)
    if ignored:
        return f"nothing imported from {where}: {ignored} file(s) found, none a transcript"
    suffixes = ", ".join(sorted(WALKED_SUFFIXES))
    return f"nothing imported from {where}: no files ending in {suffixes}"
