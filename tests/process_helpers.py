"""Run ``python -m softgrain`` in a child process, as a user's shell would.

For the checks an in-process call cannot make safely: a command that may hang (it is killed after a
time bound), signals (SIGINT, SIGTERM) sent mid-run, and two commands running at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def child_environment() -> dict[str, str]:
    """This checkout's ``src`` first on the path, whatever softgrain is installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Child:
    """A running ``python -m softgrain ARGS``; stdout and stderr are collected as they arrive."""

    def __init__(self, *args: object, cwd: str | os.PathLike | None = None) -> None:
        self.args = [str(a) for a in args]
        self.proc = subprocess.Popen([sys.executable, "-m", "softgrain", *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=child_environment(), cwd=cwd)
        self._out = bytearray()
        self._err = bytearray()
        self._readers = [threading.Thread(target=self._drain, args=(self.proc.stdout, self._out), daemon=True),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self._err), daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _drain(stream, sink: bytearray) -> None:
        # os.read returns what is there: progress bars end their updates with \r, not \n.
        fd = stream.fileno()
        while chunk := os.read(fd, 65536):
            sink.extend(chunk)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdout(self) -> str:
        return self._out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self._err.decode("utf-8", "replace")

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait_for(self, text: str, timeout: float) -> bool:
        """Wait until ``text`` appears on stderr (True) or ``timeout`` s pass or the child exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr:
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the readers collect the last output
                return text in self.stderr
            time.sleep(0.1)
        return False

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float) -> tuple[int, str, str] | None:
        """Exit code, stdout and stderr; None if still running after ``timeout`` s (then killed)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        for reader in self._readers:
            reader.join(timeout=10)
        return self.proc.returncode, self.stdout, self.stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> "Child":
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def run_softgrain(*args: object, timeout: float = 120) -> tuple[int, str, str] | None:
    """Run ``python -m softgrain ARGS`` to its end; None if it ran longer than ``timeout`` s."""
    with Child(*args) as child:
        return child.finish(timeout)


def assert_one_line_error(code: int | None, out: str, err: str, *named: str) -> str:
    """Exit code 2, nothing on stdout, one ``softgrain: error:`` line naming every ``named`` text."""
    assert code == 2, f"exit code {code}, stderr: {err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert out == "", out[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-3000:]
    assert lines[0].startswith("softgrain: error: "), lines[0]
    for text in named:
        assert text in lines[0], (text, lines[0])
    return lines[0]
