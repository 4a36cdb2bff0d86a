#!/usr/bin/env bash
# GPU check of issue 12 (batched JAX backend), for a machine with jax + CUDA preinstalled.
#
#   OUT=/path/to/results scripts/gpu_check.sh            # on the GPU machine, from any folder
#   GPU_CHECK_TINY=1 OUT=/tmp/check scripts/gpu_check.sh  # a tiny map, to check the script on a CPU
#
# Installs nothing (the GPU machine may have no network): it checks that the Python modules
# softgrain needs are importable and runs softgrain from this checkout (PYTHONPATH=src).
# Writes into $OUT:
#   environment.txt         python, jax, devices, nvidia-smi
#   bench.json              softgrain bench --backend jax --json (device, runs_per_s, s_per_run
#                           for batches 1/16/64/256, phase_map_2000_runs_s, numba on one core)
#   phase-map/              softgrain phase-map --resolution 20 --seeds 5 --backend jax
#                           (2,000 paper-grid runs; resumable store, figure, summary)
#   phase_map_timing.json   wall time, runs finished and runs per second of that map
# The map is stopped after MAP_TIMEOUT seconds (default 420) so that the whole check fits a
# 15-minute device budget; the runs finished by then are kept in the store and counted.
# MAP_SET adds --set options to the map (default: run.substeps="adaptive", measured to stay
# within the fixed-step ensemble's CI; set MAP_SET="" for the fixed sub-step count).
set -euo pipefail

: "${OUT:?set OUT to the folder for the results}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
TINY="${GPU_CHECK_TINY:-0}"
MAP_TIMEOUT="${MAP_TIMEOUT:-420}"
MAP_SET="${MAP_SET-run.substeps=\"adaptive\"}"
mkdir -p "$OUT"

"$PY" - <<'PYEOF'
import importlib.util, sys
needed = ["numpy", "scipy", "numba", "xarray", "netCDF4", "zarr", "dask", "distributed",
          "matplotlib", "pydantic", "typer", "rich", "tqdm", "psutil", "imageio", "meshio",
          "jinja2", "orix", "jax"]
missing = [m for m in needed if importlib.util.find_spec(m) is None]
if missing:
    sys.exit("gpu_check: missing Python modules: " + ", ".join(missing)
             + " (install softgrain's dependencies: pip install -e . and jax[cuda12])")
PYEOF

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)"
  "$PY" -c 'import sys, jax; print("python", sys.version.split()[0]); print("jax", jax.__version__); print("devices", jax.devices())'
  nvidia-smi 2>/dev/null || echo "nvidia-smi: not available"
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

bench=(bench --backend jax --json)
map=(phase-map --resolution 20 --seeds 5)
if [[ "$TINY" == 1 ]]; then
  bench+=(--quick --batches 1 2)
  map=(phase-map --resolution 2 --seeds 2 --set grid.nx=40 --set grid.ny=16
       --set nucleation.count=10 --set run.end_time_s=10.0 --set deposition.crossing_time_s=10.0
       --set 'run.snapshot_times_s=[10.0]')
fi
for setting in $MAP_SET; do map+=(--set "$setting"); done

echo "gpu_check: softgrain ${bench[*]}"
"$PY" -m softgrain "${bench[@]}" > "$OUT/bench.json"

echo "gpu_check: softgrain ${map[*]} --backend jax (stopped after ${MAP_TIMEOUT} s)"
started=$(date +%s.%N)
set +e
timeout -s INT -k 60 "$MAP_TIMEOUT" "$PY" -m softgrain "${map[@]}" --backend jax \
  --out "$OUT/phase-map" --quiet
status=$?
set -e
finished=$(date +%s.%N)

"$PY" - "$OUT" "$started" "$finished" "$status" <<'PYEOF'
import json, sys
import numpy as np
import xarray as xr
out, started, finished, status = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
store = xr.open_zarr(f"{out}/phase-map/phase_map.zarr")
state = store["status"].values
ok = int((state == 1).sum())
wall = finished - started
timing = {"exit_status": status, "stopped_by_timeout": status in (124, 130, 137),
          "wall_s_including_start_up": wall, "runs_total": int(state.size), "runs_ok": ok,
          "runs_failed": int((state == 2).sum()),
          "runs_per_s": ok / wall if wall > 0 else None,
          "projected_2000_runs_s": 2000 * wall / ok if ok else None,
          "mean_wall_s_per_run_in_batches": float(np.nanmean(store["wall_time_s"].values)) if ok else None,
          "config": json.loads(store.attrs["base_config_json"])["numerics"]}
with open(f"{out}/phase_map_timing.json", "w") as fh:
    json.dump(timing, fh, indent=2)
print(json.dumps(timing, indent=2))
PYEOF
echo "gpu_check: done; results in $OUT"
