"""Train-step time of the MSTRNN for each scan-kernel variant (issue 2).

    python benchmarks/step_time.py                                  # everything, one table
    python benchmarks/step_time.py --sizes=paper --variants=hoisted_gemm --repeats=10
    python benchmarks/step_time.py --sizes=small --batch=8 --time=30

A train step = forward over `[batch, time, H, W, 3]`, softmax cross-entropy over the last 15
steps (eq. 9) for every head, backward, Adam update; jitted once per variant. Variants:
  all_in_scan_native  every layer inside one `lax.scan` over time, XLA's conv and gradients
  hoisted_native      feed-forward convs over all frames at once, only recurrences scanned
  hoisted_gemm        hoisted + `ops.conv2d(impl='gemm')` (GEMM kernel/input gradients)
Sizes: 'paper' = CL1AD MSTRNN (108x108, ~3.0M params); 'small' = 32x32 synthetic frames with
the quick width (width_scale 0.25). Columns: median step time over --repeats runs after one
warm-up, timed round-robin across the variants of a size so that load changes hit them alike;
compile time (lower + compile); XLA's memory estimate for the compiled step (arguments +
outputs + temporaries - donated aliases); on GPU also the device's peak bytes in use.
"""

import platform
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import optax

from mstrnn_jax import configs
from mstrnn_jax import models

VARIANTS = {
  'all_in_scan_native': dict(time_layout='all_in_scan', conv_impl='native'),
  'hoisted_native': dict(time_layout='hoisted', conv_impl='native'),
  'hoisted_gemm': dict(time_layout='hoisted', conv_impl='gemm'),
}
VOTING_PERIOD = 15  # Sec. II.E

_SIZES = flags.DEFINE_list('sizes', ['small', 'paper'], 'Model sizes: small, paper.')
_VARIANTS = flags.DEFINE_list(
  'variants', list(VARIANTS), f'Kernel variants: {", ".join(VARIANTS)}.'
)
_BATCH = flags.DEFINE_integer('batch', 8, 'Videos per step.')
_TIME = flags.DEFINE_integer('time', 30, 'Frames per video.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed steps per variant (after one warm-up step).')
_LEAKY = flags.DEFINE_enum(
  'leaky_scan', 'sequential', ('sequential', 'associative'), 'Feature-unit leaky integration.'
)
_REMAT = flags.DEFINE_bool('remat', False, 'jax.checkpoint the scan bodies.')


def make_config(size: str, variant: str, time_steps: int) -> configs.ModelConfig:
  options = dict(
    VARIANTS[variant], bn_steps=time_steps, leaky_scan=_LEAKY.value, remat=_REMAT.value
  )
  if size == 'paper':
    return configs.get_model_config('mstrnn', 'cl1ad', **options)
  if size == 'small':
    return configs.derive_config('mstrnn', 32, (('action', 27),), width_scale=0.25, **options)
  raise ValueError(f'benchmarks/step_time.py: unknown size {size!r}; use small or paper.')


def make_train_step(cfg: configs.ModelConfig, optimizer: optax.GradientTransformation):
  """Jitted `(params, batch_stats, opt_state, videos, labels, taus) -> (..., loss)`."""

  def loss_fn(params, batch_stats, videos, labels, taus):
    out = models.apply(cfg, params, batch_stats, videos, taus, train=True)
    loss = 0.0
    for head in cfg.head_names:
      logits = out.logits[head][:, -VOTING_PERIOD:]
      target = jnp.broadcast_to(labels[head][:, None], logits.shape[:2])
      loss += optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()
    return loss, out.batch_stats

  def train_step(params, batch_stats, opt_state, videos, labels, taus):
    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      params, batch_stats, videos, labels, taus
    )
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss

  return jax.jit(train_step, donate_argnums=(0, 1, 2))


def prepare(size: str, variant: str) -> dict:
  """Builds and compiles one variant's train step; returns its state and compile statistics."""
  cfg = make_config(size, variant, _TIME.value)
  key_init, key_video, key_label = jax.random.split(jax.random.PRNGKey(0), 3)
  variables = models.init(cfg, key_init)
  optimizer = optax.adam(1e-3)
  shape = (_BATCH.value, _TIME.value, cfg.input_size, cfg.input_size, 3)
  videos = jax.random.uniform(key_video, shape, jnp.float32)
  labels = {h: jax.random.randint(key_label, (_BATCH.value,), 0, n) for h, n in cfg.heads}
  taus = jnp.asarray(cfg.taus, jnp.float32)
  args = [
    variables['params'],
    variables['batch_stats'],
    optimizer.init(variables['params']),
    videos,
    labels,
    taus,
  ]
  start = time.perf_counter()
  compiled = make_train_step(cfg, optimizer).lower(*args).compile()
  compile_s = time.perf_counter() - start
  memory = compiled.memory_analysis()
  xla_bytes = None
  if memory is not None:
    xla_bytes = (
      memory.argument_size_in_bytes
      + memory.output_size_in_bytes
      + memory.temp_size_in_bytes
      - memory.alias_size_in_bytes
    )
  run = dict(
    size=size,
    variant=variant,
    input=cfg.input_size,
    compiled=compiled,
    args=args,
    compile_s=compile_s,
    xla_bytes=xla_bytes,
    times=[],
    params=sum(x.size for x in jax.tree.leaves(variables['params'])),
  )
  timed_step(run)  # warm-up
  run['times'].clear()
  return run


def timed_step(run: dict) -> None:
  """One train step of a prepared variant; appends its wall time."""
  params, batch_stats, opt_state, videos, labels, taus = run['args']
  start = time.perf_counter()
  params, batch_stats, opt_state, loss = run['compiled'](
    params, batch_stats, opt_state, videos, labels, taus
  )
  loss.block_until_ready()
  run['times'].append(time.perf_counter() - start)
  if not bool(jnp.isfinite(loss)):
    raise FloatingPointError(
      f'benchmarks/step_time.py: non-finite loss for {run["size"]}/{run["variant"]}.'
    )
  run['args'][:3] = [params, batch_stats, opt_state]


def main(argv):
  del argv
  for name in _VARIANTS.value:
    if name not in VARIANTS:
      raise app.UsageError(f'unknown variant {name!r}; use {", ".join(VARIANTS)}.')
  device = jax.devices()[0]
  print(
    f'# {device.platform}: {device.device_kind}; {jax.device_count()} device(s); '
    f'host {platform.processor() or platform.machine()}; jax {jax.__version__}'
  )
  print(
    f'# batch {_BATCH.value}, time {_TIME.value}, repeats {_REPEATS.value}, '
    f'leaky_scan {_LEAKY.value}, remat {_REMAT.value}'
  )
  header = (
    '| size | input | params | variant | step (median ms) | compile (s) | XLA memory (MiB) '
    '| speed-up vs all_in_scan_native |'
  )
  print(header)
  print('|---' * (header.count('|') - 1) + '|')
  for size in _SIZES.value:
    runs = [prepare(size, variant) for variant in _VARIANTS.value]
    # Interleaved timing (v1, v2, v3, v1, ...): a change in machine load hits every variant alike,
    # so the speed-ups measured in one run stay comparable.
    for _ in range(_REPEATS.value):
      for run in runs:
        timed_step(run)
    baseline = None
    for run in runs:
      step_ms = 1e3 * statistics.median(run['times'])
      if run['variant'] == 'all_in_scan_native':
        baseline = step_ms
      speedup = f'{baseline / step_ms:.1f}x' if baseline else '-'
      xla = '-' if run['xla_bytes'] is None else f'{run["xla_bytes"] / 2**20:.0f}'
      print(
        f'| {size} | {run["input"]} | {run["params"]:,} | {run["variant"]} | {step_ms:.0f} | '
        f'{run["compile_s"]:.1f} | {xla} | {speedup} |',
        flush=True,
      )
    peak = (jax.devices()[0].memory_stats() or {}).get('peak_bytes_in_use')
    if peak is not None:
      print(f'# {size}: device peak bytes in use (all variants so far): {peak / 2**20:.0f} MiB')
    del runs


if __name__ == '__main__':
  app.run(main)
