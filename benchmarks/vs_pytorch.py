"""The project's MSTRNN train step against the same network in PyTorch eager (issue 12).

    python benchmarks/vs_pytorch.py --torch_python=../torchenv/bin/python
    python benchmarks/vs_pytorch.py --torch_python=../torchenv/bin/python --sizes=small --rounds=1
    python benchmarks/vs_pytorch.py --torch_python=../torchenv/bin/python --check   # same numbers?

Run from the project's venv; PyTorch lives in its own interpreter (`--torch_python`, e.g. a venv
with `pip install -e ".[bench]"` or `pip install torch numpy`), so neither the tests nor the
main job ever need it. Every measurement is its own process (cold: no compilation cache;
`--impls=...,jax_warm` adds JAX processes that read JAX's persistent compilation cache, filled by
one untimed process first: what a repeated run with `JAX_COMPILATION_CACHE_DIR` set gets),
the implementations alternate (torch, jax, torch, jax, ...) so that a change in the machine's
load hits both alike, and each process runs `--warmup` steps, then `--steps` timed steps, and
reports the median step, the first step (for JAX: trace + compile + run), the time from
process start to the end of the first step, and its peak RSS.

The networks are the two MSTRNNs of the PyTorch anchor (`../shared/anchors/`): B=8 videos,
T=30 frames, 15 classes, taus (2, 100), loss eq. (9) over the last 15 steps, Adam lr 1e-3,
float32; LARGE: 108x108, conv0 3x3 stride 3 with 32 maps, layers 128/256, FC 512/512;
SMALL: 84x84, conv0 16 maps, layers 32/64, FC 128/128. The PyTorch model below is the
project's model (same parameters, per-time-step batch-statistics BN on every conv and FC
layer, eqs. 5-9) written the usual PyTorch way: NCHW `F.conv2d`, a Python loop over time,
FC and softmax only on the 15 voting steps. `--check` loads the project's initial parameters
into it and compares loss and gradients.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

_START = time.perf_counter()

SIZES = {
  'large': dict(
    input_size=108,
    conv0_width=32,
    feature_widths=(128, 256),
    context_widths=(128, 256),
    fc_widths=(512, 512),
  ),
  'small': dict(
    input_size=84,
    conv0_width=16,
    feature_widths=(32, 64),
    context_widths=(32, 64),
    fc_widths=(128, 128),
  ),
}
IMPLS = {  # --impls name: table label
  'torch': 'PyTorch eager',
  'jax': 'mstrnn-jax',
  'jax_warm': 'mstrnn-jax, warm compilation cache',
}
BATCH, TIME, CLASSES, TAUS, VOTING_STEPS, LR, CONV0_STRIDE, EPS = (
  8,
  30,
  15,
  (2.0, 100.0),
  15,
  1e-3,
  3,
  1e-5,
)


def peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def batch_arrays(size: str, seed: int = 0):
  """Videos `[B, T, H, W, 3]` uniform in [0, 1) and labels `[B]` (numpy, same in both)."""
  import numpy as np

  rng = np.random.default_rng(seed)
  s = SIZES[size]['input_size']
  videos = rng.random((BATCH, TIME, s, s, 3), dtype=np.float32)
  labels = rng.integers(0, CLASSES, size=(BATCH,)).astype(np.int64)
  return videos, labels


def timed_loop(step, warmup: int, steps: int) -> dict:
  """Runs `step()` (returns the loss as a float) warmup + steps times; timings in a dict."""
  t0 = time.perf_counter()
  loss_first = step()
  first_s = time.perf_counter() - t0
  ready_s = time.perf_counter() - _START
  for _ in range(warmup - 1):
    step()
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    loss = step()
    times.append(time.perf_counter() - t0)
  return dict(
    step_ms=1e3 * statistics.median(times),
    step_ms_min=1e3 * min(times),
    first_s=first_s,
    ready_s=ready_s,
    loss_first=loss_first,
    loss_last=loss,
  )


# ----------------------------------------------------------------------------- PyTorch
def torch_spatial(size: str) -> dict[str, int]:
  """Spatial sides: conv0 (stride 3, valid), pools (floor), 3x3 / 2x2 valid convs."""
  s = {'conv0': (SIZES[size]['input_size'] - 3) // CONV0_STRIDE + 1}
  s['pool0'] = s['conv0'] // 2
  s['feature1'] = s['pool0'] - 2
  s['pool1'] = s['feature1'] // 2
  s['context1'] = s['pool1'] - 1
  s['feature2'] = s['pool1'] - 2
  s['pool2'] = s['feature2'] // 2
  s['context2'] = s['pool2'] - 1
  return s


def torch_param_shapes(size: str) -> dict[str, tuple[int, ...]]:
  """Parameters of the PyTorch model, named `layer/name` like the project's tree (OIHW, [out, in])."""
  s = SIZES[size]
  (h1, h2), top = s['fc_widths'], torch_spatial(size)['context2']
  shapes = {'conv0/w': (s['conv0_width'], 3, 3, 3), 'conv0/b': (s['conv0_width'],)}
  bn_widths = {'conv0/bn': s['conv0_width'], 'fc1/bn': h1, 'fc2/bn': h2}
  previous, previous_context = s['conv0_width'], None
  for i, (f, c) in enumerate(zip(s['feature_widths'], s['context_widths']), start=1):
    layer = f'context_layer{i}'
    shapes.update(
      {
        f'{layer}/k': (f, previous, 3, 3),
        f'{layer}/b': (f,),
        f'{layer}/k_tilde': (c, f, 2, 2),
        f'{layer}/b_tilde': (c,),
        f'{layer}/z_tilde': (c, c, 3, 3),
      }
    )
    bn_widths.update({f'{layer}/bn_k': f, f'{layer}/bn_k_tilde': c, f'{layer}/bn_z_tilde': c})
    if previous_context is not None:
      shapes[f'{layer}/z'] = (f, previous_context, 2, 2)
      bn_widths[f'{layer}/bn_z'] = f
    previous, previous_context = f, c
  shapes.update(
    {
      'fc1/w': (h1, previous_context * top * top),
      'fc1/b': (h1,),
      'fc2/w': (h2, h1),
      'fc2/b': (h2,),
      'heads/action/w': (CLASSES, h2),
      'heads/action/b': (CLASSES,),
    }
  )
  for name, width in bn_widths.items():
    shapes[f'{name}/gamma'], shapes[f'{name}/beta'] = (width,), (width,)
  return shapes


def torch_init(size: str, seed: int = 0) -> dict:
  """LeCun-normal kernels, BN gamma 0.1 / beta 0, zero biases (the project's init scheme)."""
  import torch

  gen = torch.Generator().manual_seed(seed)
  params = {}
  for name, shape in torch_param_shapes(size).items():
    if name.endswith('gamma'):
      value = torch.full(shape, 0.1)
    elif len(shape) == 1:
      value = torch.zeros(shape)
    else:
      fan_in = 1
      for n in shape[1:]:
        fan_in *= n
      value = torch.randn(shape, generator=gen) * fan_in**-0.5
    params[name] = torch.nn.Parameter(value)
  return params


def torch_loss(params: dict, videos, labels, size: str):
  """Eq. (9) loss of the MSTRNN on `videos` `[B, T, H, W, 3]`, one frame at a time (NCHW)."""
  import torch
  import torch.nn.functional as F

  p, sp, b = params, torch_spatial(size), videos.shape[0]

  def bn(x, name):  # batch statistics of this time step (BN before the activation)
    return F.batch_norm(
      x, None, None, p[f'{name}/gamma'], p[f'{name}/beta'], training=True, eps=EPS
    )

  def conv_bn(x, layer, kernel, bias, bn_name, **kw):
    return bn(
      F.conv2d(x, p[f'{layer}/{kernel}'], p[f'{layer}/{bias}'] if bias else None, **kw),
      f'{layer}/{bn_name}',
    )

  def leaky(state, drive, inv_tau):  # eqs. (5), (7)
    return (1 - inv_tau) * state + inv_tau * drive

  zeros = lambda layer, kernel, side: torch.zeros(b, p[f'{layer}/{kernel}'].shape[0], side, side)
  l1, l2 = 'context_layer1', 'context_layer2'
  fhat1, chat1 = zeros(l1, 'k', sp['feature1']), zeros(l1, 'k_tilde', sp['context1'])
  fhat2, chat2 = zeros(l2, 'k', sp['feature2']), zeros(l2, 'k_tilde', sp['context2'])
  a1, a2 = 1.0 / TAUS[0], 1.0 / TAUS[1]
  frames = videos.permute(1, 0, 4, 2, 3).contiguous()  # [T, B, 3, H, W]
  loss = 0.0
  for t in range(frames.shape[0]):
    h = conv_bn(frames[t], 'conv0', 'w', 'b', 'bn', stride=CONV0_STRIDE)
    pool0 = F.max_pool2d(F.relu(h), 2)
    fhat1 = leaky(fhat1, conv_bn(pool0, l1, 'k', 'b', 'bn_k'), a1)
    pool1 = F.max_pool2d(F.relu(fhat1), 2)
    chat1 = leaky(
      chat1,
      conv_bn(pool1, l1, 'k_tilde', 'b_tilde', 'bn_k_tilde')
      + conv_bn(F.relu(chat1), l1, 'z_tilde', None, 'bn_z_tilde', padding=1),
      a1,
    )
    c1 = F.relu(chat1)
    fhat2 = leaky(
      fhat2, conv_bn(pool1, l2, 'k', 'b', 'bn_k') + conv_bn(c1, l2, 'z', None, 'bn_z'), a2
    )
    pool2 = F.max_pool2d(F.relu(fhat2), 2)
    chat2 = leaky(
      chat2,
      conv_bn(pool2, l2, 'k_tilde', 'b_tilde', 'bn_k_tilde')
      + conv_bn(F.relu(chat2), l2, 'z_tilde', None, 'bn_z_tilde', padding=1),
      a2,
    )
    if t >= frames.shape[0] - VOTING_STEPS:
      top = F.relu(chat2).permute(0, 2, 3, 1).flatten(1)  # NHWC flatten order, as the project
      h = 1.7159 * torch.tanh((2.0 / 3.0) * bn(F.linear(top, p['fc1/w'], p['fc1/b']), 'fc1/bn'))
      h = 1.7159 * torch.tanh((2.0 / 3.0) * bn(F.linear(h, p['fc2/w'], p['fc2/b']), 'fc2/bn'))
      logits = F.linear(h, p['heads/action/w'], p['heads/action/b'])
      loss = loss + F.cross_entropy(logits, labels)
  return loss / VOTING_STEPS


def measure_torch(size: str, warmup: int, steps: int, threads: int = 0) -> dict:
  import torch

  if threads:
    torch.set_num_threads(threads)
  torch.manual_seed(0)
  params = torch_init(size)
  optimizer = torch.optim.Adam(params.values(), lr=LR)
  videos, labels = (torch.from_numpy(a) for a in batch_arrays(size))

  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = torch_loss(params, videos, labels, size)
    loss.backward()
    optimizer.step()
    return loss.item()

  result = timed_loop(step, warmup, steps)
  result.update(
    params=sum(v.numel() for v in params.values()),
    version=f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
    f'{torch.backends.cpu.get_cpu_capability()}',
  )
  return result


def check_torch(npz_path: str) -> dict:
  """Loss and gradients of the PyTorch model at the project's parameters (from `--check`)."""
  import numpy as np
  import torch

  data = dict(np.load(npz_path))
  size = str(data.pop('size'))
  params = {}
  for name, shape in torch_param_shapes(size).items():
    value = data[f'p:{name}']
    value = to_torch_layout(value, shape)
    params[name] = torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(value)))
  loss = torch_loss(
    params, torch.from_numpy(data['videos']), torch.from_numpy(data['labels']), size
  )
  loss.backward()
  expected = {
    name: to_torch_layout(data[f'g:{name}'], shape)
    for name, shape in torch_param_shapes(size).items()
  }
  # A bias followed by a BN has a zero gradient (rounding noise in both): not compared.
  zero = lambda name: name.endswith(('/b', '/b_tilde')) and not name.startswith('heads')
  errors = {
    name: float(np.abs(params[name].grad.numpy() - g).max() / np.abs(g).max())
    for name, g in expected.items()
    if not zero(name)
  }
  return dict(loss_torch=float(loss), loss_jax=float(data['loss']), grad_max_rel_error=errors)


def to_torch_layout(value, shape):
  """Project layout (HWIO kernels, [in, out] dense) -> PyTorch's (OIHW, [out, in])."""
  if value.ndim == 4:
    value = value.transpose(3, 2, 0, 1)
  elif value.ndim == 2:
    value = value.T
  if tuple(value.shape) != tuple(shape):
    raise ValueError(
      f'benchmarks/vs_pytorch.py: parameter of shape {value.shape}, expected {shape}.'
    )
  return value


# ----------------------------------------------------------------------------- JAX (the project)
def project_config(size: str):
  from mstrnn_jax import configs

  return configs.derive_config(
    'mstrnn',
    SIZES[size]['input_size'],
    (('action', CLASSES),),
    TIME,
    conv0_stride=CONV0_STRIDE,
    taus=TAUS,
    **{k: v for k, v in SIZES[size].items() if k != 'input_size'},
  )


def project_loss_fn(cfg):
  """`(params, batch_stats, videos, labels [B, 1], taus) -> (loss, new batch_stats)`."""
  from mstrnn_jax import models
  from mstrnn_jax import train

  def loss_fn(params, batch_stats, videos, labels, taus):
    out = models.apply(cfg, params, batch_stats, videos, taus, train=True)
    return train.voting_cross_entropy(
      out.logits, labels, tuple(cfg.heads), VOTING_STEPS
    ), out.batch_stats

  return loss_fn


def project_train_step(size: str):
  """The project's jitted train step (forward, eq. 9, backward, Adam; state donated).

  Returns `(step, state, inputs)`: `step(*state, *inputs) -> (*state, loss)`.
  """
  import jax
  import jax.numpy as jnp
  import optax
  from mstrnn_jax import models
  from mstrnn_jax import train

  cfg = project_config(size)
  loss_fn = project_loss_fn(cfg)
  tx = optax.adam(LR)

  def train_step(params, batch_stats, opt_state, videos, labels, taus):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      params, batch_stats, videos, labels, taus
    )
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  variables = models.init(cfg, jax.random.PRNGKey(0))
  videos, labels = batch_arrays(size)
  state = [variables['params'], variables['batch_stats'], tx.init(variables['params'])]
  inputs = (
    jnp.asarray(videos),
    jnp.asarray(labels[:, None], jnp.int32),
    jnp.asarray(TAUS, jnp.float32),
  )
  # train.jit: the XLA options every program of the engine compiles with.
  return train.jit(train_step, donate_argnums=(0, 1, 2)), state, inputs


def measure_jax(size: str, warmup: int, steps: int) -> dict:
  import jax
  from mstrnn_jax import train

  train_step, state, inputs = project_train_step(size)
  n_params = sum(x.size for x in jax.tree.leaves(state[0]))

  def step():
    *state[:], loss = train_step(*state, *inputs)
    return float(loss)

  result = timed_loop(step, warmup, steps)
  result.update(
    params=n_params,
    version=f'jax {jax.__version__}, conv {project_config(size).conv_impl}, '
    f'XLA options {train.compiler_options() or "default"}',
  )
  return result


def check_jax(size: str, npz_path: str) -> None:
  """Writes the project's initial parameters, a batch, its loss and gradients to `npz_path`."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from mstrnn_jax import models

  jax.config.update('jax_enable_x64', False)
  cfg = project_config(size)
  variables = models.init(cfg, jax.random.PRNGKey(0))
  videos, labels = batch_arrays(size, seed=1)
  taus = jnp.asarray(TAUS, jnp.float32)
  (loss, _), grads = jax.value_and_grad(project_loss_fn(cfg), has_aux=True)(
    variables['params'],
    variables['batch_stats'],
    jnp.asarray(videos),
    jnp.asarray(labels[:, None], jnp.int32),
    taus,
  )
  flat = lambda tree, prefix: {
    prefix + '/'.join(str(k.key) for k in path): np.asarray(leaf)
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
  }
  np.savez(
    npz_path,
    size=size,
    videos=videos,
    labels=labels,
    loss=np.float64(loss),
    **flat(variables['params'], 'p:'),
    **flat(grads, 'g:'),
  )


# ----------------------------------------------------------------------------- driver
def run_child(python: str, impl: str, size: str, args, cache_dir: str | None = None) -> dict:
  """One measurement in its own process; `cache_dir`: JAX's persistent compilation cache
  (JAX_COMPILATION_CACHE_DIR) for the `jax_warm` processes, none for the others."""
  env = {k: v for k, v in os.environ.items() if k != 'JAX_COMPILATION_CACHE_DIR'}
  if impl == 'jax_warm':
    env['JAX_COMPILATION_CACHE_DIR'] = cache_dir
  project_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = project_root + os.pathsep + env.get('PYTHONPATH', '')
  cmd = [
    python,
    os.path.abspath(__file__),
    f'--one={impl.removesuffix("_warm")}:{size}',
    f'--warmup={args.warmup}',
    f'--steps={args.steps}',
    f'--torch_threads={args.torch_threads}',
  ]
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
  lines = [l for l in proc.stdout.splitlines() if l.startswith('{')]
  if proc.returncode != 0 or not lines:
    tail = ' | '.join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    raise RuntimeError(
      f'benchmarks/vs_pytorch.py: {impl} {size} failed (rc {proc.returncode}): {tail}'
    )
  return {**json.loads(lines[-1]), 'impl': impl}


def table(results: list[dict], sizes: list[str]) -> str:
  rows = [
    '| size | implementation | step, median ms (per round) | first step (s) | start to first '
    'step done (s) | peak RSS (MiB) | params | step speed-up vs PyTorch (per round) |',
    '|---|---|---|---|---|---|---|---|',
  ]
  for size in sizes:
    torch_runs = [r for r in results if r['size'] == size and r['impl'] == 'torch']
    for impl in IMPLS:
      runs = [r for r in results if r['size'] == size and r['impl'] == impl]
      if not runs:
        continue
      span = lambda key, fmt: (
        fmt.format(min(r[key] for r in runs))
        if len(runs) == 1
        else f'{fmt.format(min(r[key] for r in runs))}-{fmt.format(max(r[key] for r in runs))}'
      )
      speedups = '-'
      if impl != 'torch' and torch_runs:
        speedups = ' / '.join(
          f'{t["step_ms"] / j["step_ms"]:.2f}x' for t, j in zip(torch_runs, runs)
        )
        speedups += f' (median {statistics.median(t["step_ms"] for t in torch_runs) / statistics.median(j["step_ms"] for j in runs):.2f}x)'
      name = IMPLS[impl]
      steps = ' / '.join(f'{r["step_ms"]:.0f}' for r in runs)
      rows.append(
        f'| {size} | {name} ({runs[0]["version"]}) | {steps} | {span("first_s", "{:.2f}")} | '
        f'{span("ready_s", "{:.1f}")} | {span("rss_mib", "{:.0f}")} | {runs[0]["params"]:,} | '
        f'{speedups} |'
      )
  return '\n'.join(rows)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument(
    '--torch_python',
    default=sys.executable,
    help='Interpreter with torch installed (default: this one).',
  )
  parser.add_argument('--sizes', default='large,small', help='Comma-separated: large, small.')
  parser.add_argument(
    '--impls',
    default='torch,jax',
    help='Comma-separated: torch, jax (cold), jax_warm (persistent compilation cache).',
  )
  parser.add_argument(
    '--rounds', type=int, default=3, help='Alternating rounds (one process each).'
  )
  parser.add_argument('--warmup', type=int, default=3, help='Untimed steps (the first included).')
  parser.add_argument('--steps', type=int, default=10, help='Timed steps per process.')
  parser.add_argument(
    '--torch_threads',
    type=int,
    default=0,
    help="torch.set_num_threads (0: torch's default, one per core).",
  )
  parser.add_argument(
    '--check',
    action='store_true',
    help="Compare loss and gradients of the two at the project's initial parameters.",
  )
  parser.add_argument('--one', help=argparse.SUPPRESS)  # impl:size, a single measurement
  parser.add_argument('--check_torch', help=argparse.SUPPRESS)  # npz written by --check
  args = parser.parse_args()
  if args.one:
    impl, size = args.one.split(':')
    result = (
      measure_torch(size, args.warmup, args.steps, args.torch_threads)
      if impl == 'torch'
      else measure_jax(size, args.warmup, args.steps)
    )
    result.update(impl=impl, size=size, rss_mib=peak_rss_mib())
    print(json.dumps(result), flush=True)
    return
  if args.check_torch:
    print(json.dumps(check_torch(args.check_torch)), flush=True)
    return
  sizes = args.sizes.split(',')
  for size in sizes:
    if size not in SIZES:
      parser.error(f'--sizes: unknown size {size!r}; use {", ".join(SIZES)}.')
  if args.check:
    for size in sizes:
      with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f'{size}.npz')
        check_jax(size, path)
        proc = subprocess.run(
          [args.torch_python, os.path.abspath(__file__), f'--check_torch={path}'],
          capture_output=True,
          text=True,
        )
        if proc.returncode != 0:
          raise RuntimeError(
            f'benchmarks/vs_pytorch.py: torch check failed: {proc.stderr.strip()[-500:]}'
          )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        worst = max(result['grad_max_rel_error'].items(), key=lambda kv: kv[1])
        print(
          f'{size}: loss jax {result["loss_jax"]:.6f} torch {result["loss_torch"]:.6f}; '
          f'largest gradient error (max abs / max |grad|; biases before a BN, zero, skipped) {worst[1]:.1e} ({worst[0]})',
          flush=True,
        )
    return
  impls = args.impls.split(',')
  for impl in impls:
    if impl not in IMPLS:
      parser.error(f'--impls: unknown implementation {impl!r}; use {", ".join(IMPLS)}.')
  print(
    f'# {BATCH} videos x {TIME} frames, {args.warmup} warm-up + {args.steps} timed steps per '
    f'process, {args.rounds} alternating rounds; {os.cpu_count()} CPUs, load average '
    f'{" ".join(f"{x:.1f}" for x in os.getloadavg())}',
    flush=True,
  )
  results = []
  cache_dir = tempfile.mkdtemp(prefix='vs_pytorch_jax_cache_')  # new: never a stale entry
  try:
    if 'jax_warm' in impls:
      for size in sizes:  # one untimed process per network fills the cache
        run_child(sys.executable, 'jax_warm', size, args, cache_dir)
    for round_ in range(args.rounds):
      for size in sizes:
        for impl in impls:
          python = args.torch_python if impl == 'torch' else sys.executable
          result = run_child(python, impl, size, args, cache_dir)
          results.append(result)
          print(
            f'# round {round_ + 1} {size} {impl}: step {result["step_ms"]:.0f} ms, first '
            f'{result["first_s"]:.2f} s, RSS {result["rss_mib"]:.0f} MiB, loss '
            f'{result["loss_first"]:.4f} -> {result["loss_last"]:.4f}',
            flush=True,
          )
  finally:
    shutil.rmtree(cache_dir, ignore_errors=True)
  print(f'# load average after: {" ".join(f"{x:.1f}" for x in os.getloadavg())}')
  print(table(results, sizes))


if __name__ == '__main__':
  main()
