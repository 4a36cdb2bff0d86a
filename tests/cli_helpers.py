"""Shared helper: call the console entry point in-process, as a user's shell would."""

from __future__ import annotations

import sys

import pytest

from softgrain import cli


def invoke_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run ``softgrain.cli.main`` with ``args``; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["softgrain", *args])
    with pytest.raises(SystemExit) as info:
        cli.main()
    captured = capsys.readouterr()
    code = info.value.code if isinstance(info.value.code, int) else (0 if info.value.code is None else 1)
    return code, captured.out, captured.err
