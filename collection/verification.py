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
    return VerifierResult(command, done.returncode, (done.stdout + done.stderr)[-4000:])
