"""pytest set-up shared by the docstring examples of src/softgrain and the tests."""

import importlib.util

# jax is an optional extra (pip install -e ".[jax]"); the batched JAX kernel imports it at the top,
# so its module is left out of the docstring collection where jax is not installed (its tests in
# tests/test_batched_jax.py skip with a reason instead).
collect_ignore = []
if importlib.util.find_spec("jax") is None:
    collect_ignore.append("src/softgrain/phasefield/batched_jax.py")
