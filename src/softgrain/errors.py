"""Exceptions that mean "the user's input is wrong" (exit code 2 on the command line)."""

from __future__ import annotations


class UserInputError(ValueError):
    """Base class of errors caused by bad input; the message names the bad value."""


class ConfigError(UserInputError):
    """A configuration file or override is invalid; the message names the file and key."""


class StabilityError(UserInputError):
    """The explicit time step exceeds the stability limit and sub-stepping was refused."""


class SimulationError(RuntimeError):
    """A run failed part-way (e.g. NaN appeared); the message says where it stopped."""
