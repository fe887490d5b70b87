"""Verifiers: a session's success is decided from its workspace, by a command's exit status,
never by what the agent claims."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

VERIFIER_TIMEOUT_S = 300


@dataclass
class VerifierResult:
    command: str
    exit_code: int
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def as_metrics(self) -> dict[str, object]:
        return {"command": self.command, "exit_code": self.exit_code, "output": self.output}


def run_verifier(command: str, cwd: str | None) -> VerifierResult:
    """Run the verifier command in the session's working directory."""
    try:
        done = subprocess.run(
            command,
            shell=True,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=VERIFIER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        return VerifierResult(command, 124, f"verifier timed out after {exc.timeout}s")
    return VerifierResult(command, done.returncode, tail(done.stdout + done.stderr))


def tail(text: str, limit: int = 4000) -> str:
    """The end of a command's output, where its verdict is, cut at a line boundary (never
    mid-word) and marked when something was left out."""
    text = text.rstrip()
    if len(text) <= limit:
        return text
    kept = text[-limit:]
    newline = kept.find("\n")
    if 0 <= newline < limit // 2:
        kept = kept[newline + 1 :]
    else:  # one very long line: cut at a space
        space = kept.find(" ")
        kept = kept[space + 1 :] if 0 <= space < limit // 2 else kept
    return f"… ({len(text) - len(kept)} characters before)\n{kept}"
