"""Throughput of the stacked LOSO program: all folds as one program vs one fold alone.

    python benchmarks/throughput.py                          # synth3a, quick preset, MSTRNN
    python benchmarks/throughput.py --devices=1,2            # + scaling over simulated CPU devices
    python benchmarks/throughput.py --run_chunk=none,1       # vmap all runs vs one run at a time

For each setting it compiles the train-epoch program, runs one warm-up epoch, then times
--epochs epochs (wall clock, blocked on the result) and reports fold-epochs per second.  The
single-fold program is the same code with a run axis of 1; the last column compares every row
with it on the fewest devices measured (on more devices one fold is padded to a full run axis).  Simulated devices
(XLA_FLAGS=--xla_force_host_platform_device_count=N) are measured in subprocesses, one per N.
Prints a markdown table (and writes it to --out if given).
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags

_DATASET = flags.DEFINE_string('dataset', 'synth3a', 'Dataset.')
_PRESET = flags.DEFINE_string('preset', 'quick', 'Experiment preset.')
_MODEL = flags.DEFINE_string('model', 'mstrnn', 'Model family.')
_RUNS = flags.DEFINE_integer('runs', 9, 'Runs (folds) in the stacked program.')
_EPOCHS = flags.DEFINE_integer('epochs', 2, 'Timed epochs per setting (after one warm-up).')
_CHUNKS = flags.DEFINE_list(
  'run_chunk',
  ['auto'],
  "Runs vmapped together per device: 'auto', 'none' (all) or an integer (1 = one at a time).",
)
_DEVICES = flags.DEFINE_list(
  'devices',
  [],
  'Simulated CPU device counts to measure (subprocess '
  'each); empty: only the current process devices.',
)
_WIDTH = flags.DEFINE_float('width_scale', None, 'Override the preset model width.')
_OUT = flags.DEFINE_string('out', None, 'Also write the markdown table here.')
_CHILD = flags.DEFINE_bool('child', False, 'Internal: measure in this process, print JSON.')


def measure(n_runs: int, run_chunk, epochs: int) -> dict:
  """Seconds per epoch of the train program with ``n_runs`` runs on all local devices."""
  import jax  # pylint: disable=import-outside-toplevel
  from mstrnn_jax import epoch_loop, plan  # pylint: disable=import-outside-toplevel
  from mstrnn_jax import experiment_configs as ec  # pylint: disable=import-outside-toplevel

  config = ec.get_config(_PRESET.value, _DATASET.value)
  config.model = _MODEL.value
  if _WIDTH.value is not None:
    config.width_scale = _WIDTH.value
  p = plan.plan(config)
  runs = plan.run_table(p, _MODEL.value)
  runs = (runs * (-(-n_runs // len(runs))))[:n_runs]
  e = epoch_loop.setup(p, _MODEL.value, runs=runs, run_chunk=run_chunk)
  states = e.programs.init(e.keys)
  t0 = time.perf_counter()
  states, m = e.programs.train_epoch(states, e.videos, e.labels, e.tables)
  jax.block_until_ready(m)
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  for _ in range(epochs):
    states, m = e.programs.train_epoch(states, e.videos, e.labels, e.tables)
  jax.block_until_ready(m)
  per_epoch = (time.perf_counter() - t0) / epochs
  return {
    'runs': n_runs,
    'run_chunk': str(run_chunk),
    'devices': jax.device_count(),
    'backend': jax.default_backend(),
    'steps': e.programs.steps_per_epoch,
    'first_epoch_s': round(first, 2),
    'epoch_s': round(per_epoch, 3),
    'fold_epochs_per_s': round(n_runs / per_epoch, 3),
  }


def _chunk(text: str):
  if text in ('auto', 'none'):
    return None if text == 'none' else 'auto'
  return int(text)


def _child_rows() -> list[dict]:
  rows = []
  for c in _CHUNKS.value:
    rows.append(measure(1, _chunk(c), _EPOCHS.value))
    rows.append(measure(_RUNS.value, _chunk(c), _EPOCHS.value))
  return rows


def main(argv):
  del argv
  if _CHILD.value:
    print('JSON' + json.dumps(_child_rows()), flush=True)
    return
  rows = []
  if not _DEVICES.value:
    rows += _child_rows()
  for d in _DEVICES.value:
    env = dict(
      os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={d}', JAX_PLATFORMS='cpu'
    )
    args = [a for a in sys.argv[1:] if not a.startswith('--devices')] + ['--child']
    out = subprocess.run(
      [sys.executable, os.path.abspath(__file__)] + args,
      env=env,
      capture_output=True,
      text=True,
      check=False,
    )
    if out.returncode:
      raise RuntimeError(
        f'benchmarks/throughput.py child with {d} devices failed:\n{out.stderr[-3000:]}'
      )
    rows += json.loads(out.stdout.split('JSON', 1)[1])
  # Baseline: one fold alone on the fewest devices measured (more devices would only pad it).
  fewest = min(r['devices'] for r in rows)
  single = {r['run_chunk']: r for r in rows if r['runs'] == 1 and r['devices'] == fewest}
  lines = [
    '| backend | devices | run_chunk | runs | steps/epoch | first epoch (s) | epoch (s) '
    '| fold-epochs/s | vs one fold alone on 1 device |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    base = single[r['run_chunk']]['fold_epochs_per_s']
    lines.append(
      f'| {r["backend"]} | {r["devices"]} | {r["run_chunk"]} | {r["runs"]} | '
      f'{r["steps"]} | {r["first_epoch_s"]} | {r["epoch_s"]} | '
      f'{r["fold_epochs_per_s"]} | {r["fold_epochs_per_s"] / base:.2f}x |'
    )
  table = '\n'.join(lines)
  print(table)
  if _OUT.value:
    with open(_OUT.value, 'w') as f:
      f.write(table + '\n')


if __name__ == '__main__':
  app.run(main)
