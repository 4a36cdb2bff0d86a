"""Exceptions that mean "the user's input is wrong" (exit code 2 on the command line)."""

from __future__ import annotations

from typing import Mapping, Sequence


class UserInputError(ValueError):
    """Base class of errors caused by bad input; the message names the bad value."""


class ParameterError(UserInputError):
    """A library function's argument is invalid; the message names the parameter.

    The library speaks of its own parameters (``out_dir``, ``workers``, ``seeds`` …); a front end
    names them its own way with :meth:`render` (the command line: its flags). ``problem`` follows
    the parameter's name in the message and may mention ``related`` parameters as ``{name}``.

    Examples
    --------
    >>> error = ParameterError("workers", "= 0: must be at least 1")
    >>> str(error)
    'workers = 0: must be at least 1'
    >>> ParameterError("workers", "applies to a local cluster only, not with {scheduler}",
    ...                related=["scheduler"]).render({"workers": "--workers", "scheduler": "--scheduler"})
    '--workers applies to a local cluster only, not with --scheduler'
    """

    def __init__(self, parameter: str, problem: str, related: Sequence[str] = ()) -> None:
        self.parameter = parameter
        self.problem = problem
        self.related = tuple(related)
        super().__init__(self.render({}))

    def __reduce__(self):
        # Rebuilt from its parts when it crosses processes (Dask workers pickle exceptions).
        return (type(self), (self.parameter, self.problem, self.related))

    def render(self, names: Mapping[str, str]) -> str:
        """The message with every parameter called by ``names`` (unnamed ones keep their name)."""
        text = self.problem
        for name in self.related:
            text = text.replace("{" + name + "}", names.get(name, name))
        return f"{names.get(self.parameter, self.parameter)} {text}"


class ConfigError(UserInputError):
    """A configuration file or override is invalid; the message names the file and key.

    Attributes
    ----------
    key : str or None
        The dotted configuration key at fault, where one is (a front end may name it its own
        way, e.g. the flag that set it).
    problem : str or None
        The message without the file: ``<key> = <value>: <problem>; allowed: <range>``.
    """

    def __init__(self, message: str, *, key: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.problem = problem


class StabilityError(UserInputError):
    """The explicit time step exceeds the stability limit and sub-stepping was refused."""


class SimulationError(RuntimeError):
    """A run failed part-way (e.g. NaN appeared); the message says where it stopped."""


class BackendUnavailableError(UserInputError):
    """A computing backend was asked for whose optional dependency is not installed."""
