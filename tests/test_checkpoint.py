"""Orbax save / restore of stacked run states and load_run on a hand-made workdir."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstrnn_jax import checkpoint, model_records, models, parallel, train
from mstrnn_jax import experiment_configs as ec
import standin_model
import damage
import subproc


def _states(n_runs=4, seed=0):
  model = standin_model.make()
  tx = train.make_optimizer(train.OptimConfig(lr_values=(0.01,), lr_boundaries=()), 3)
  keys = jnp.asarray(
    np.stack([jax.random.key_data(jax.random.key(seed + r)) for r in range(n_runs)])
  )
  return jax.vmap(lambda k: train.create_train_state(model, tx, k))(keys)


def test_save_restore_roundtrip_with_sharding(tmp_path):
  mesh = parallel.make_mesh(1)
  shard = parallel.run_sharding(mesh)
  states = jax.device_put(_states(), shard)
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ck'), max_to_keep=2)
  assert ckpt.latest_epoch() is None
  for epoch in (1, 2, 3):
    ckpt.save(epoch, states, {'epoch': epoch, 'history': {'x': [[epoch]]}})
  assert ckpt.latest_epoch() == 3
  assert sorted(os.listdir(tmp_path / 'ck')) == ['2', '3']  # max_to_keep
  target = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=shard), _states(seed=9)
  )
  restored, meta = ckpt.restore(3, target)
  assert ckpt.restore_population(3) is None
  ckpt.close()
  assert meta == {'epoch': 3, 'history': {'x': [[3]]}}
  assert type(restored) is type(states)
  assert jax.tree.structure(restored) == jax.tree.structure(states)
  jax.tree.map(np.testing.assert_array_equal, restored, states)
  assert restored.params['proj']['w'].sharding == shard


@pytest.mark.parametrize('saved, wanted', [(4, 3), (3, 6)])
def test_restore_repads_a_state_saved_for_another_device_count(tmp_path, saved, wanted):
  """3 real runs saved padded to ``saved`` rows (copies of run 0), restored for a device count
  that pads them to ``wanted``: no checkpoint is taken for damaged, every real run is as saved,
  the padding rows are run 0 and the target's sharding is kept."""
  real = jax.tree.map(np.asarray, _states(n_runs=3))
  shard = parallel.run_sharding(parallel.make_mesh(1))
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'ck'))
  ckpt.save(1, jax.device_put(parallel.pad_runs(real, saved), shard), {'epoch': 1})
  target = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct((wanted, *x.shape[1:]), x.dtype, sharding=shard), real
  )
  warnings = []
  newest = ckpt.restore_newest(target, move_aside=True, warn=warnings.append)
  ckpt.close()
  assert warnings == [] and not os.path.exists(tmp_path / 'ck.damaged')
  epoch, restored, _ = newest
  assert epoch == 1
  assert jax.tree.structure(restored) == jax.tree.structure(real)
  jax.tree.map(np.testing.assert_array_equal, restored, parallel.pad_runs(real, wanted))
  assert restored.params['proj']['w'].sharding == shard


def test_restore_without_target_reads_a_checkpoint_saved_on_two_devices(tmp_path):
  """Analysis (load_run, bn_probe) restores without a target; a checkpoint written by a run on
  2 devices must read in this 1-device process, state and population statistics alike (orbax
  refuses a target-less restore across device topologies)."""
  directory = str(tmp_path / 'ck')
  save = textwrap.dedent(f"""
    import jax, numpy as np
    from mstrnn_jax import checkpoint, parallel
    assert jax.device_count() == 2
    shard = parallel.run_sharding(parallel.make_mesh(2))
    tree = {{'params': {{'w': np.arange(12.0, dtype=np.float32).reshape(4, 3)}},
             'step': np.arange(4, dtype=np.int32)}}
    ckpt = checkpoint.Checkpointer({directory!r})
    ckpt.save(1, parallel.put(tree, shard), {{'epoch': 1}},
              population={{'mean': parallel.put(np.ones((4, 2), np.float32), shard)}})
    ckpt.close()
  """)
  proc = subprocess.run(
    [sys.executable, '-c', save], env=subproc.cpu_env(2), capture_output=True, text=True
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert jax.device_count() == 1
  ckpt = checkpoint.Checkpointer(directory)
  state, meta = ckpt.restore(1)
  population = ckpt.restore_population(1, meta)
  ckpt.close()
  np.testing.assert_array_equal(state['params']['w'], np.arange(12.0).reshape(4, 3))
  np.testing.assert_array_equal(state['step'], np.arange(4))
  np.testing.assert_array_equal(population['mean'], np.ones((4, 2)))
  assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves((state, population)))


def test_load_run_drops_padding_and_rebuilds_config(tmp_path):
  config = ec.get_config('tiny', 'synth3a')
  record = model_records.model_record(
    'mstrnn', 'synth3a', 32, (('action', 27),), 9, config.width_scale, {}
  )
  cfg = model_records.model_config_from_record(record)
  runs = [
    {'run': r, 'test_subject': r, 'subject_name': f's{r}', 'taus': [2.0, 100.0]} for r in range(3)
  ]
  variables = [models.init(cfg, jax.random.key(r)) for r in range(4)]  # 3 runs + padding
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *variables)
  state = {
    'params': stacked['params'],
    'batch_stats': stacked['batch_stats'],
    'epoch': jnp.full((4,), 5, jnp.int32),
  }
  workdir = tmp_path / 'run'
  os.makedirs(workdir)
  with open(workdir / 'experiment.json', 'w') as f:
    json.dump(
      {
        'experiment': ec.to_dict(config),
        'dataset': 'synth3a',
        'dataset_kwargs': ec.dataset_kwargs(config),
        'models': {'mstrnn': record},
        'runs': runs,
        'runs_by_model': {'mstrnn': runs},
      },
      f,
    )
  ckpt = checkpoint.Checkpointer(str(workdir / 'checkpoints' / 'mstrnn'))
  ckpt.save(5, state, {'epoch': 5})
  ckpt.close()
  run = checkpoint.load_run(str(workdir))
  assert run.model_cfg == cfg and run.epoch == 5 and run.runs == runs
  assert run.dataset_kwargs == ec.dataset_kwargs(config)
  for r in range(3):
    jax.tree.map(
      lambda a, b: np.testing.assert_array_equal(a[r], b), run.params, variables[r]['params']
    )
  assert jax.tree.leaves(run.params)[0].shape[0] == 3
  with pytest.raises(KeyError, match='lrcn'):
    checkpoint.load_run(str(workdir), model='lrcn')
  with pytest.raises(FileNotFoundError, match='experiment.json'):
    checkpoint.load_run(str(tmp_path))


def test_experiment_record_roundtrip():
  config = ec.override(
    ec.get_config('quick', 'synthcl2'), {'taus': ((2.0, 50.0), (100.0, 150.0)), 'subjects': (1, 2)}
  )
  assert ec.from_dict(json.loads(json.dumps(ec.to_dict(config)))) == config


def test_restore_newest_falls_back_past_a_truncated_checkpoint(tmp_path):
  directory = str(tmp_path / 'ck')
  ckpt = checkpoint.Checkpointer(directory, max_to_keep=3)
  for epoch in (1, 2):
    ckpt.save(epoch, _states(seed=epoch), {'epoch': epoch})
  ckpt.close()
  damage.truncate_checkpoint(directory, 2)
  ckpt = checkpoint.Checkpointer(directory, max_to_keep=3)
  with pytest.raises(checkpoint.CheckpointError, match=r'ck/2: unreadable checkpoint') as e:
    ckpt.restore(2)
  assert '\n' not in str(e.value)
  warnings = []
  epoch, states, meta = ckpt.restore_newest(move_aside=True, warn=warnings.append)
  assert (epoch, meta) == (1, {'epoch': 1})
  jax.tree.map(
    np.testing.assert_array_equal,
    states['params'],
    jax.tree.map(np.asarray, _states(seed=1).params),
  )
  assert len(warnings) == 1 and 'ck/2' in warnings[0] and 'ck.damaged/2' in warnings[0]
  assert ckpt.epochs() == [1] and os.path.isdir(tmp_path / 'ck.damaged' / '2')
  ckpt.save(2, _states(seed=2), {'epoch': 2})  # the epoch can be saved again
  assert ckpt.restore(2)[1] == {'epoch': 2}
  ckpt.close()


def test_restore_newest_without_readable_checkpoint_is_one_line(tmp_path):
  directory = str(tmp_path / 'ck')
  ckpt = checkpoint.Checkpointer(directory)
  assert ckpt.restore_newest() is None
  ckpt.save(1, _states(), {'epoch': 1})
  ckpt.close()
  damage.truncate_checkpoint(directory, 1)
  ckpt = checkpoint.Checkpointer(directory)
  with pytest.raises(checkpoint.CheckpointError, match='no readable checkpoint') as e:
    ckpt.restore_newest(warn=lambda m: None)
  assert '\n' not in str(e.value)
  assert ckpt.epochs() == [1]  # without move_aside nothing moves
  with pytest.raises(checkpoint.CheckpointError, match='no such checkpoint'):
    ckpt.restore(7)
  ckpt.close()


@pytest.mark.parametrize('text', ['{"epoch": 1, "hist', '{"epoch": 7, "history": {}}', '[1, 2]'])
def test_invalid_checkpoint_metadata_names_its_file(tmp_path, text):
  directory = str(tmp_path / 'ck')
  ckpt = checkpoint.Checkpointer(directory, max_to_keep=3)
  for epoch in (1, 2):
    ckpt.save(epoch, _states(seed=epoch), {'epoch': epoch, 'history': {}})
  ckpt.close()
  meta_file = os.path.join(directory, '2', 'meta', 'metadata')
  with open(meta_file, 'w') as f:
    f.write(text)
  ckpt = checkpoint.Checkpointer(directory, max_to_keep=3)
  with pytest.raises(checkpoint.CheckpointError, match=f'{meta_file}: ') as e:
    ckpt.restore(2)
  assert '\n' not in str(e.value)
  warnings = []
  assert ckpt.restore_newest(warn=warnings.append)[0] == 1  # falls back past it
  assert len(warnings) == 1 and meta_file in warnings[0]
  ckpt.close()
