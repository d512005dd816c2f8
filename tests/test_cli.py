"""The launchers' command line: every experiment-config field reachable, aliases, epochs."""

import asyncio
import gc
import json
import logging as std_logging
import os
import sys

from absl import flags
from absl import logging
import pytest

from mstrnn_jax import cli, names
from mstrnn_jax import experiment_configs as ec

# Valid non-default values for the string fields (everything else is derived from the type).
_STRINGS = {
  'dataset': 'synthcl1',
  'preset': 'tiny',
  'model': 'lrcn',
  'vote_rule': 'mean_prob',
  'model_overrides.conv_impl': 'gemm',
  'model_overrides.time_layout': 'all_in_scan',
  'model_overrides.leaky_scan': 'associative',
  'model_overrides.fc_input': 'pool',
  'stream': 'always',
  'data.synthcl2.count_timing': 'equal_total',
}


def _flags(*args, **defaults):
  fv, argv = flags.FlagValues(), ['prog', *args]
  cli.define_flags(
    **{'dataset': 'synth3a', 'models': names.MODELS + ('all',), **defaults},
    flag_values=fv,
    argv=argv,
  )
  fv(argv)
  return fv


def _parse(*args, **defaults):
  return cli.config_from_flags(_flags(*args, **defaults))


def _leaves(config, prefix=''):
  for key in config.keys():
    value = config[key]
    if hasattr(value, 'keys'):
      yield from _leaves(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}', config.get_type(key) if value is None else type(value), value


def _new_value(path, kind, old):
  if path in _STRINGS:
    return _STRINGS[path], _STRINGS[path]
  if kind is bool:
    return str(not old), not old
  if kind is int:
    return str((old or 0) + 3), (old or 0) + 3
  if kind is float:
    return str((old or 0.0) + 0.25), (old or 0.0) + 0.25
  if kind is tuple:
    return '(5,6)', (5, 6)
  raise AssertionError(f'{path}: no test value for {kind}')


def _get(config, path):
  for key in path.split('.'):
    config = config[key]
  return config


LEAVES = list(_leaves(ec.get_config('quick', 'synth3a')))


def test_the_walk_covers_every_kind_of_field():
  paths = {p for p, _, _ in LEAVES}
  assert {
    'optim.weight_decay',
    'optim.lr_boundaries',
    'width_scale',
    'voting_steps',
    'eval_batch_size',
    'model_overrides.remat',
    'model_overrides.bn_momentum',
    'data.synth3a.noise_std',
    'data.synthcl2.num_subjects',
    'data.cl1ad.frame_size',
    'seeds.init',
    'seeds.batches',
  } <= paths
  assert len(paths) > 60


@pytest.mark.parametrize('path, kind, old', LEAVES, ids=[p for p, _, _ in LEAVES])
def test_every_config_field_is_a_flag(path, kind, old):
  text, value = _new_value(path, kind, old)
  config = _parse(f'--config.{path}={text}')
  assert _get(config, path) == value


def test_model_flag_takes_a_comma_separated_list_of_the_launchers_models():
  assert _parse('--model=lrcn,mstnn').model == 'lrcn,mstnn'
  with pytest.raises(flags.IllegalFlagValueError, match='--model takes mstrnn, lrcn'):
    _parse('--model=lrcn,foo')
  with pytest.raises(flags.IllegalFlagValueError, match='--model takes mstrnn, mstnn '):
    _parse('--model=lrcn', models=('mstrnn', 'mstnn'))


def test_the_issue_example_changes_the_config():
  config = _parse(
    '--config.width_scale=0.25', '--config.voting_steps=3', '--config.optim.weight_decay=0.001'
  )
  assert (config.width_scale, config.voting_steps, config.optim.weight_decay) == (0.25, 3, 0.001)


def test_short_flags_are_aliases_of_config_fields():
  config = _parse(
    '--dataset=3acwd',
    '--preset=quick',
    '--model=all',
    '--subjects=0,2',
    '--seed=4',
    '--tau1=2,50',
    '--tau2=100',
    '--batch_size=8',
    '--vote_rule=mean_prob',
  )
  assert config.dataset == 'weizmann_3acwd' and config.preset == 'quick'
  assert (config.model, config.subjects, config.seed, config.batch_size) == ('all', (0, 2), 4, 8)
  assert config.taus == ((2.0, 100.0), (50.0, 100.0)) and config.vote_rule == 'mean_prob'
  assert config.data.weizmann_3acwd.frame_size == 40
  with pytest.raises(ValueError, match='contradicts'):
    _parse('--epochs=3', '--config.epochs=4')
  with pytest.raises(ValueError, match='give both --tau1 and --tau2'):
    _parse('--tau1=2')


def test_default_preset_follows_the_dataset():
  assert _parse().preset == 'quick' and _parse('--dataset=cl1ad').preset == 'paper'
  assert _parse(dataset='synthcl2', tau1=['2', '50'], tau2=['100']).taus == (
    (2.0, 100.0),
    (50.0, 100.0),
  )


def test_epochs_move_the_learning_rate_boundaries():
  paper = ec.get_config('paper', '3acwd')
  assert paper.optim.lr_boundaries == (200, 300) and paper.epochs == 600
  config = _parse('--dataset=3acwd', '--epochs=60')
  assert config.epochs == 60 and config.optim.lr_boundaries == (20, 30)
  config = _parse('--epochs=60', '--config.optim.lr_boundaries=(10,)')
  assert config.optim.lr_boundaries == (10,)
  assert ec.with_epochs(ec.get_config('quick', 'synth3a'), 80).optim.lr_boundaries == (56,)


def test_seeds_are_separate_fields():
  config = _parse('--seed=2', '--config.seeds.batches=9', '--config.data.synth3a.seed=5')
  assert ec.run_seeds(config) == (2, 9) and config.data.synth3a.seed == 5
  assert ec.dataset_kwargs(config)['seed'] == 5


@pytest.mark.parametrize(
  'args, flag',
  [
    (('--config.data.synth3a.subject_spread=0',), 'synth3a.subject_spread'),
    (('--config.data.synth3a.min_cycles=-1',), 'synth3a.min_cycles'),
    (('--config.data.synth3a.min_cycles=3',), 'synth3a.max_cycles'),
    (('--dataset=synthcl2', '--config.data.synthcl2.stroke_scale=0'), 'synthcl2.stroke_scale'),
    (('--dataset=synthcl2', '--config.data.synthcl2.count_timing=x'), 'synthcl2.count_timing'),
    (('--dataset=folder:/nowhere', '--config.data.folder.fps=0'), 'folder.fps'),
    (('--dataset=folder:/nowhere', '--config.data.folder.frame_step=0'), 'folder.frame_step'),
    (
      (
        '--dataset=folder:/nowhere',
        '--config.data.folder.frame_size=32',
        '--config.data.folder.crop_margin=32',
      ),
      'folder.crop_margin',
    ),
  ],
)
def test_a_generator_argument_out_of_range_names_its_flag(args, flag):
  with pytest.raises(ValueError, match=rf'^--config\.data\.{flag}: '):
    ec.dataset_kwargs(_parse(*args))


def test_config_json_roundtrip():
  config = _parse(
    '--dataset=synthcl2',
    '--tau1=2,50',
    '--tau2=100,150',
    '--subjects=1,2',
    '--config.model_overrides.feature_widths=(4,8)',
  )
  assert ec.from_dict(ec.to_dict(config)) == config


def test_resume_alone_reads_the_config_back(tmp_path):
  stored = _parse('--dataset=synthcl1', '--epochs=7', '--config.optim.clip=3.0')
  with open(os.path.join(tmp_path, 'experiment.json'), 'w') as f:
    json.dump({'experiment': ec.to_dict(stored)}, f)
  assert cli.resolve_config(_flags('--resume', f'--workdir={tmp_path}')) == stored
  # Settings given with --resume are set on the stored config (launch then compares them).
  got = cli.resolve_config(
    _flags(
      '--resume', f'--workdir={tmp_path}', '--epochs=9', '--model=lrcn', '--config.optim.clip=4.0'
    )
  )
  assert (got.dataset, got.epochs, got.model, got.optim.clip) == ('synthcl1', 9, 'lrcn', 4.0)
  assert got.optim.lr_boundaries == stored.optim.lr_boundaries
  assert cli.resolve_config(
    _flags('--resume', f'--workdir={tmp_path}', '--dataset=synth3a', '--tau1=2', '--tau2=50')
  ).taus == ((2.0, 50.0),)


@pytest.mark.parametrize(
  'args, flag',
  [
    (('--subjects=a',), '--subjects=a: expected comma-separated integers'),
    (('--tau1=2,abc', '--tau2=100'), '--tau1=2,abc: expected comma-separated numbers'),
    (('--tau1=2', '--tau2=x'), '--tau2=x'),
  ],
)
def test_bad_list_values_name_their_flag(args, flag):
  with pytest.raises(ValueError, match=flag):
    _parse(*args)


def test_a_usage_error_is_one_line():
  with pytest.raises(SystemExit) as e:
    cli.main(['run.py', 'mstrnn'])
  assert "unexpected arguments ['mstrnn']" in str(e.value.code) and '\n' not in str(e.value.code)


@pytest.fixture
def quiet(monkeypatch):
  """Runs cli.quiet_logs and undoes it afterwards (it changes process-wide logging state)."""
  verbosity = logging.get_verbosity()
  loggers = ('tensorflow_datasets', 'absl', 'orbax')
  levels = {name: std_logging.getLogger(name).level for name in loggers}
  monkeypatch.setattr(sys, 'unraisablehook', sys.unraisablehook)
  cli.quiet_logs()
  yield
  std_logging.getLogger('asyncio').removeFilter(cli._drop_orphaned_task_noise)
  for name, level in levels.items():
    std_logging.getLogger(name).setLevel(level)
  logging.set_verbosity(verbosity)


def _orphan_a_failed_read(kind: str) -> None:
  """What orbax leaves behind after a failed restore: a task (or a bare future, as wrapped
  tensorstore reads are) whose exception nobody reads, garbage-collected after its loop is
  closed; asyncio then logs it with a traceback."""

  error = ValueError('OUT_OF_RANGE: Error reading byte range')

  async def fail():
    raise error

  loop = asyncio.new_event_loop()
  if kind == 'Task':
    orphan = loop.create_task(fail())
    loop.run_until_complete(asyncio.sleep(0.01))
  else:
    orphan = loop.create_future()
    orphan.set_exception(error)
  loop.close()
  del orphan
  gc.collect()


@pytest.mark.parametrize('kind', ['Task', 'Future'])
def test_orphaned_read_traceback_is_logged_without_quiet_logs(kind, caplog):
  _orphan_a_failed_read(kind)
  assert any(f'{kind} exception was never retrieved' in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize('kind', ['Task', 'Future'])
def test_quiet_logs_drops_orphaned_read_tracebacks_only(kind, quiet, caplog):
  _orphan_a_failed_read(kind)
  std_logging.getLogger('asyncio').error('some other asyncio error')
  messages = [r.getMessage() for r in caplog.records if r.name == 'asyncio']
  assert messages == ['some other asyncio error']
