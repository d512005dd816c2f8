"""Where the time of one MSTRNN train step goes, per XLA op (jax.profiler; issue 12).

    python benchmarks/profile_step.py --size=large            # the anchor's LARGE network
    python benchmarks/profile_step.py --size=small --top=40

Builds the train step of `benchmarks/vs_pytorch.py` (same network, batch and loss), runs two
warm-up steps, traces `--steps` steps with `jax.profiler.trace(create_perfetto_trace=True)`
and sums the duration of every XLA op (thunk) from the Perfetto trace. Prints the ops by total
time and a breakdown by kind (names of XLA:CPU's fused ops: `ynn_fusion` / `dot` = matrix
products through YNNPACK, `slice` / `stack` / `concatenate` = im2col patches, `pad_add` =
col2im, `transpose` / `copy` = layout copies; everything else element-wise: BN, pooling,
ReLU, leaky integration, Adam). Ops inside `lax.scan` bodies appear once per time step; the
`while` ops that contain them are left out of the sums.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vs_pytorch  # pylint: disable=wrong-import-position

KINDS = (
  ('GEMM (YNNPACK / dot)', ('ynn', 'dot', 'convolution')),
  ('col2im (pad-add)', ('pad_add', 'add_pad')),
  ('im2col (slices, stack)', ('slice', 'stack', 'concatenate')),
  ('transposes, copies', ('transpose', 'copy')),
)


def kind(name: str) -> str | None:
  """Category of an op name; None for the executor's own and `while` events."""
  if name.startswith(('ThunkExecutor', '$', 'while', 'SlinkyThreadPool')):
    return None
  for label, keys in KINDS:
    if any(k in name for k in keys):
      return label
  return 'element-wise (BN, pool, ReLU, leaky, Adam)'


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--size', default='large', choices=sorted(vs_pytorch.SIZES))
  parser.add_argument('--steps', type=int, default=3, help='Traced steps.')
  parser.add_argument('--top', type=int, default=25, help='Ops to list.')
  args = parser.parse_args()
  import jax  # pylint: disable=import-outside-toplevel

  step, state, inputs = vs_pytorch.project_train_step(args.size)
  for _ in range(2):
    *state, loss = step(*state, *inputs)
  loss.block_until_ready()
  with tempfile.TemporaryDirectory() as log_dir:
    with jax.profiler.trace(log_dir, create_perfetto_trace=True):
      for _ in range(args.steps):
        *state, loss = step(*state, *inputs)
      loss.block_until_ready()
    with gzip.open(glob.glob(f'{log_dir}/**/perfetto_trace.json.gz', recursive=True)[0]) as f:
      trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  total, count = collections.Counter(), collections.Counter()
  for e in events:
    if e.get('ph') == 'X':
      total[e['name']] += e['dur'] / 1e3 / args.steps
      count[e['name']] += 1
  ops = {n: t for n, t in total.items() if kind(n)}
  whole = total.get('ThunkExecutor::Execute (wait for completion)', 0.0)
  print(
    f'# {args.size}: step {whole:.0f} ms under the profiler, sum of ops {sum(ops.values()):.0f} ms '
    f'(both threads), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}'
  )
  by_kind = collections.Counter()
  for n, t in ops.items():
    by_kind[kind(n)] += t
  print('| kind | ms per step | share |\n|---|---|---|')
  for label, t in by_kind.most_common():
    print(f'| {label} | {t:.0f} | {100 * t / sum(ops.values()):.0f}% |')
  print(f'\n| op | ms per step | calls per step |\n|---|---|---|')
  for n, t in sorted(ops.items(), key=lambda kv: -kv[1])[: args.top]:
    print(f'| {n} | {t:.1f} | {count[n] // args.steps} |')


if __name__ == '__main__':
  main()
