"""Run-axis sharding: padding helpers, and N simulated CPU devices == one device."""

import json
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from mstrnn_jax import parallel

import subproc

ROOT = subproc.ROOT

# Trains 3 stand-in runs for 2 epochs and evaluates them on all devices of this process;
# prints losses, a parameter leaf and the evaluation flags as JSON.
SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    sys.path.insert(0, 'tests')
    import standin_model, test_train
    from mstrnn_jax import parallel, train
    run_chunk = None if sys.argv[1] == 'none' else int(sys.argv[1])
    mesh = parallel.make_mesh()
    n_pad = parallel.padded_size(3, mesh)
    videos, labels = test_train.toy_data()
    tab = test_train.tables([np.arange(0, 16), np.arange(8, 24), np.arange(0, 24, 2)],
                            [np.arange(16, 24), np.arange(0, 8), np.arange(1, 24, 4)],
                            [[1.5], [4.0], [2.0]])
    keys = np.stack([jax.random.key_data(jax.random.key(s)) for s in range(3)])
    shard, repl = parallel.run_sharding(mesh), parallel.replicated(mesh)
    tab = parallel.put(parallel.pad_runs(jax.tree.map(np.asarray, tab), n_pad), shard)
    keys = parallel.put(parallel.pad_runs(keys, n_pad), shard)
    videos, labels = parallel.put(videos, repl), parallel.put(labels, repl)
    programs = train.make_programs(standin_model.make(test_train.HEADS), train.OptimConfig(
        lr_values=(0.05,), lr_boundaries=()), batch_size=4, steps_per_epoch=3, voting_steps=2,
        eval_batch_size=5, mesh=mesh, run_chunk=run_chunk)
    states = programs.init(keys)
    for _ in range(2):
      states, m = programs.train_epoch(states, videos, labels, tab)
    flags = programs.evaluate(states, videos, labels, tab).test
    assert states.params['proj']['w'].sharding.is_equivalent_to(parallel.run_sharding(mesh), 3)
    out = parallel.to_host({'loss': m.loss, 'w': states.params['proj']['w'], 'flags': flags})
    print(json.dumps({'devices': jax.device_count(), 'n_pad': n_pad,
                      **{k: np.asarray(v)[:3].tolist() for k, v in out.items()}}))
""")


def _run(devices, run_chunk):
  proc = subprocess.run(
    [sys.executable, '-c', SCRIPT, str(run_chunk).lower()],
    cwd=ROOT,
    env=subproc.cpu_env(devices),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_pad_runs_and_padded_size():
  mesh = parallel.make_mesh(1)
  assert parallel.padded_size(5, mesh) == 5
  tree = {'a': np.arange(6).reshape(3, 2), 'b': np.array([7, 8, 9])}
  padded = parallel.pad_runs(tree, 5)
  np.testing.assert_array_equal(padded['a'], [[0, 1], [2, 3], [4, 5], [0, 1], [0, 1]])
  np.testing.assert_array_equal(padded['b'], [7, 8, 9, 7, 7])
  with pytest.raises(ValueError, match='runs'):
    parallel.pad_runs(tree, 2)


def test_put_to_host_roundtrip():
  mesh = parallel.make_mesh()
  x = np.arange(12, dtype=np.float32).reshape(jax.device_count(), -1)
  y = parallel.put(x, parallel.run_sharding(mesh))
  np.testing.assert_array_equal(parallel.to_host(y), x)


@pytest.mark.slow
def test_simulated_devices_match_one_device():
  """3 runs on 1 device == the same runs padded to 4 over 4 devices (vmap) and to 4 over 2
  devices (lax.map): the run axis really is sharded and nothing mixes across runs."""
  one = _run(1, 1)
  for devices, chunk in ((4, None), (2, 1)):
    many = _run(devices, chunk)
    assert many['devices'] == devices and many['n_pad'] == 4
    np.testing.assert_allclose(many['loss'], one['loss'], rtol=2e-5)
    np.testing.assert_allclose(many['w'], one['w'], rtol=2e-5, atol=1e-6)
    assert many['flags'] == one['flags']
