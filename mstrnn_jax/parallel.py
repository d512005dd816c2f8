"""Device mesh and sharding of the run axis (folds x tau pairs).

All devices (of all hosts) form a 1-D mesh with axis ``'runs'``.  Stacked per-run state is split
along its leading axis (``run_sharding``); the uint8 dataset and everything else are replicated
(``replicated``).  The number of runs is padded to a multiple of the device count with copies of
run 0 (:func:`pad_runs`); their results are dropped.

Multi-host: call :func:`init_distributed` (``jax.distributed.initialize()``, which reads the
coordinator address / process id from the cluster environment: SLURM, TPU pods, or the
``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` variables) before any
other JAX call; every host then runs the same program on the same arguments, arrays are built
with ``jax.make_array_from_callback`` so each host supplies only its own shards, and results are
gathered with :func:`to_host`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

AXIS = 'runs'


# Read by :func:`init_distributed` when no cluster manager provides them (e.g. on localhost).
PROCESS_ENV = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID')


def init_distributed() -> None:
  """``jax.distributed.initialize()`` for this process.

  With ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` set (together with ``JAX_COORDINATOR_ADDRESS``
  ``host:port``), those are used: any set of machines, e.g. several processes on localhost.
  Otherwise jax detects the cluster (SLURM, Open MPI, Kubernetes, Cloud TPU pods).
  """
  if not any(os.environ.get(name) for name in PROCESS_ENV[1:]):
    jax.distributed.initialize()
    return
  missing = [name for name in PROCESS_ENV if not os.environ.get(name)]
  if missing:
    raise ValueError(
      f'mstrnn_jax/parallel.py: --multihost without a cluster manager needs all of '
      f'{", ".join(PROCESS_ENV)}; missing {", ".join(missing)}.'
    )
  jax.distributed.initialize(
    coordinator_address=os.environ['JAX_COORDINATOR_ADDRESS'],
    num_processes=int(os.environ['JAX_NUM_PROCESSES']),
    process_id=int(os.environ['JAX_PROCESS_ID']),
  )


def make_mesh(n_devices: int | None = None) -> jax.sharding.Mesh:
  """1-D mesh over the first ``n_devices`` devices (default: all devices of all hosts)."""
  n = jax.device_count() if n_devices is None else n_devices
  if not 1 <= n <= jax.device_count():
    raise ValueError(f'make_mesh: asked for {n} devices, {jax.device_count()} available.')
  return jax.make_mesh(
    (n,), (AXIS,), axis_types=(jax.sharding.AxisType.Auto,), devices=jax.devices()[:n]
  )


def run_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading (run) axis split over the mesh, other axes replicated."""
  return NamedSharding(mesh, P(AXIS))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def padded_size(n_runs: int, mesh: jax.sharding.Mesh) -> int:
  """Smallest multiple of the mesh size >= n_runs."""
  d = mesh.size
  return -(-n_runs // d) * d


def pad_runs(tree: Any, n_padded: int) -> Any:
  """Pads every leaf (numpy, leading run axis) to ``n_padded`` rows with copies of row 0."""

  def pad(x):
    x = np.asarray(x)
    extra = n_padded - x.shape[0]
    if extra < 0:
      raise ValueError(f'pad_runs: {x.shape[0]} runs > padded size {n_padded}.')
    return np.concatenate([x, np.repeat(x[:1], extra, axis=0)]) if extra else x

  return jax.tree.map(pad, tree)


def put(tree: Any, sharding: NamedSharding) -> Any:
  """Host numpy pytree -> global jax arrays with ``sharding`` (works across hosts: every host
  holds the full numpy value and supplies its addressable shards)."""

  def one(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree.map(one, tree)


def to_host(tree: Any) -> Any:
  """Global (possibly sharded, multi-host) jax arrays -> full numpy arrays on every host."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, jax.device_get(tree))
  return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
