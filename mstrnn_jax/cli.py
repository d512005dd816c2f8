"""The command line shared by ``experiments/run.py`` and ``experiments/sweep.py``.

The experiment is an ``ml_collections`` config (:mod:`mstrnn_jax.experiment_configs`): any field
is set with ``--config.<field>=<value>`` (``--config.optim.weight_decay=0.001``,
``--config.model_overrides.conv_impl=gemm``, ``--config.data.synth3a.noise_std=0.05``).  The
short flags of the design card (``--dataset``, ``--epochs``, ``--seed``, ...) are aliases of
config fields (``ALIASES``); ``--tau1`` / ``--tau2`` set ``config.taus`` to their product.
``--dataset`` and ``--preset`` choose the config the other settings change.
"""

from __future__ import annotations

import ast
import itertools
import logging as std_logging
import os
import sys
from typing import Sequence

from absl import flags
from absl import logging
from ml_collections import config_dict, config_flags

from mstrnn_jax import checkpoint, epoch_loop, launch, parallel, workdir
from mstrnn_jax import experiment_configs as ec
from mstrnn_jax.data import pipeline

FLAGS = flags.FLAGS

# Every field's default type comes from this config (all presets share its structure).
_SCHEMA = ec.get_config('quick', 'synth3a')

# Short flag -> (config field, help).
ALIASES = {
  'dataset': (
    'dataset',
    f'Dataset ({", ".join(pipeline.NAMES)}; aliases '
    f'{", ".join(f"{a}={b}" for a, b in pipeline.ALIASES.items())}); it and --preset '
    'choose the config the other flags change.',
  ),
  'preset': (
    'preset',
    f'Preset ({", ".join(ec.PRESETS)}); default quick for the synthetic '
    'datasets, paper for the real ones.',
  ),
  'model': ('model', 'Model family (mstrnn, lrcn, mstnn), several comma-separated, or all.'),
  'epochs': (
    'epochs',
    "Training epochs; the preset's learning-rate boundaries move in "
    'proportion (unless --config.optim.lr_boundaries is given).',
  ),
  'batch_size': ('batch_size', 'Mini-batch size.'),
  'subjects': ('subjects', 'Held-out subjects to run, e.g. 0,3 (default: all folds).'),
  'seed': (
    'seed',
    'Seeds initialisation and batch order / crops of every run (default 0); '
    '--config.seeds.init / .batches seed each alone, --config.data.<dataset>.seed the '
    'synthetic data.',
  ),
  'checkpoint_every': ('checkpoint_every', 'Epochs between checkpoints.'),
  'vote_rule': ('vote_rule', 'Voting-period prediction rule: vote or mean_prob.'),
}
_DEFINE = {
  int: flags.DEFINE_integer,
  float: flags.DEFINE_float,
  str: flags.DEFINE_string,
  tuple: flags.DEFINE_list,
}


def define_flags(
  *,
  dataset: str,
  models: Sequence[str],
  tau1: Sequence[str] | None = None,
  tau2: Sequence[str] | None = None,
  flag_values: flags.FlagValues = FLAGS,
  argv: list[str] | None = None,
) -> None:
  """Defines the launcher's flags; ``dataset`` / ``tau1`` / ``tau2`` are its defaults.

  ``argv``: the command line the ``--config.*`` flags are read from (default ``sys.argv``).
  """
  fv = dict(flag_values=flag_values)
  config_flags.DEFINE_config_dict(
    'config',
    ec.get_config('quick', 'synth3a'),
    'Experiment config; set any field with '
    '--config.<field>=<value> (fields: mstrnn_jax/experiment_configs/base.py).',
    lock_config=True,
    sys_argv=argv,
    **fv,
  )
  defaults = {'dataset': dataset, 'model': models[0]}
  for name, (field, help_) in ALIASES.items():
    kind = _SCHEMA.get_type(field) if _SCHEMA[field] is not None else tuple
    if name == 'model':
      flags.DEFINE_string(name, models[0], f'{help_} This launcher: {", ".join(models)}.', **fv)
      flags.register_validator(
        name,
        lambda value, allowed=tuple(models): all(m in allowed for m in value.split(',')),
        f'--model takes {", ".join(models)} (several comma-separated, e.g. '
        f'{models[0]},{models[1]}).',
        **fv,
      )
    else:
      _DEFINE[kind](name, defaults.get(name), help_, **fv)
  flags.DEFINE_list(
    'tau1',
    tau1,
    "Values of tau1 (rows of a sweep); runs every (tau1, tau2) pair; default: the model's taus.",
    **fv,
  )
  flags.DEFINE_list('tau2', tau2, 'Values of tau2 (columns of a sweep).', **fv)
  flags.DEFINE_string('workdir', None, 'Output folder (default runs/<...>-<time>).', **fv)
  flags.DEFINE_bool(
    'resume',
    False,
    'Continue the run in --workdir from its checkpoint (the '
    'config is read back from its experiment.json; settings given change it: '
    'another --model is added, a larger --epochs trains further, anything else '
    'must match).',
    **fv,
  )
  flags.DEFINE_bool(
    'dry_run', False, 'Print the resolved config, summary and step cost; no training.', **fv
  )
  flags.DEFINE_string('data_dir', None, 'Prepared real datasets (default: data/).', **fv)
  flags.DEFINE_bool('multihost', False, 'Call jax.distributed.initialize() first.', **fv)


def _alias_values(fv: flags.FlagValues) -> dict:
  """Config field -> value of every alias flag given (or with a launcher default)."""
  values = {}
  for name, (field, _) in ALIASES.items():
    if fv[name].present or fv[name].value is not None:
      value = fv[name].value
      values[field] = numbers(value, int, name) if name == 'subjects' else value
  if (fv.tau1 is None) != (fv.tau2 is None):
    raise ValueError("give both --tau1 and --tau2 (or neither for the model's taus).")
  if fv.tau1 is not None:
    values['taus'] = tuple(
      itertools.product(numbers(fv.tau1, float, 'tau1'), numbers(fv.tau2, float, 'tau2'))
    )
  return values


def numbers(items: Sequence[str], kind: type, flag: str) -> tuple:
  """``items`` (a comma-separated flag's values) as ``kind``; ValueError naming ``--flag``."""
  try:
    return tuple(kind(s) for s in items)
  except ValueError:
    raise ValueError(
      f'--{flag}={",".join(items)}: expected comma-separated '
      f'{"integers" if kind is int else "numbers"}, e.g. --{flag}=2,3.'
    ) from None


def settings(items: Sequence[str], flag: str) -> dict:
  """``['data.synth3a.reuse_clips=True', ...]`` as ``{'data.synth3a.reuse_clips': True}``: each
  value a Python literal where it reads as one (``1``, ``0.5``, ``True``), else the string;
  ValueError naming ``--flag`` for an item without ``=``."""
  out = {}
  for item in items:
    field, eq, text = item.partition('=')
    if not eq or not field:
      raise ValueError(f'--{flag}={item}: expected field=value, e.g. --{flag}=data.synth3a.seed=1.')
    try:
      out[field.strip()] = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
      out[field.strip()] = text.strip()
  return out


def config_from_flags(fv: flags.FlagValues = FLAGS) -> config_dict.ConfigDict:
  """The preset config with every alias flag and ``--config.*`` override applied."""
  overrides = dict(config_flags.get_override_values(fv['config']))
  for field, value in _alias_values(fv).items():
    flag_given = any(fv[n].present for n, (f, _) in ALIASES.items() if f == field) or (
      field == 'taus' and fv['tau1'].present
    )
    if field in overrides and flag_given and ec.tuples(overrides[field]) != value:
      raise ValueError(f'--config.{field}={overrides[field]} contradicts its short flag ({value}).')
    if flag_given or field not in overrides:
      overrides[field] = value
  config = ec.get_config(overrides.pop('preset', None), overrides.pop('dataset'))
  if 'epochs' in overrides and 'optim.lr_boundaries' not in overrides:
    config = ec.with_epochs(config, overrides.pop('epochs'))
  return ec.override(config, overrides)


def given_values(fv: flags.FlagValues) -> dict:
  """Config field -> value of every setting given on the command line (no defaults)."""
  values = dict(config_flags.get_override_values(fv['config']))
  aliases = _alias_values(fv)
  for name, (field, _) in ALIASES.items():
    if fv[name].present:
      values[field] = aliases[field]
  if fv['tau1'].present or fv['tau2'].present:
    values['taus'] = aliases['taus']
  if 'dataset' in values:
    values['dataset'] = pipeline.canonical_name(values['dataset'])
  return values


def resolve_config(fv: flags.FlagValues = FLAGS) -> config_dict.ConfigDict:
  """:func:`config_from_flags`; with --resume, the workdir's config with the settings given on
  the command line set (``launch`` then names any that differ, except new model families and
  a larger --epochs)."""
  if fv.resume and fv.workdir and os.path.exists(os.path.join(fv.workdir, workdir.EXPERIMENT)):
    return ec.override(workdir.read_config(fv.workdir), given_values(fv))
  return config_from_flags(fv)


def quiet_logs() -> None:
  """Warnings only: orbax logs every save and TFDS every dataset read at INFO.  Also drops the
  two tracebacks that orbax's orphaned asyncio reads print after a failed restore (the one-line
  CheckpointError has already said what is wrong): "Event loop is closed" (an unraisable
  exception at exit) and "Task exception was never retrieved" or "Future exception was never
  retrieved" (logged by ``asyncio`` when such a read, a task or a bare future, is
  garbage-collected; timing-dependent, both seen under load in CI)."""
  logging.set_verbosity(logging.WARNING)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  for name in ('tensorflow_datasets', 'absl', 'orbax'):
    std_logging.getLogger(name).setLevel(std_logging.WARNING)
  sys.unraisablehook = _drop_closed_loop_noise
  std_logging.getLogger('asyncio').addFilter(_drop_orphaned_task_noise)  # added once at most


def _drop_closed_loop_noise(unraisable, default=sys.unraisablehook) -> None:
  exc = unraisable.exc_value
  if isinstance(exc, RuntimeError) and str(exc) == 'Event loop is closed':
    return
  default(unraisable)


_ORPHANED = ('Task exception was never retrieved', 'Future exception was never retrieved')


def _drop_orphaned_task_noise(record: std_logging.LogRecord) -> bool:
  """False (drop) for asyncio's "Task/Future exception was never retrieved" records (asyncio's
  ``Future.__del__`` names the class); the launchers run no asyncio code of their own, so these
  come only from orbax's abandoned checkpoint reads."""
  return not record.getMessage().startswith(_ORPHANED)


def main(argv: Sequence[str]) -> None:
  """The launchers' main: config from the flags, then ``launch.launch``."""
  if len(argv) > 1:
    sys.exit(usage_error(argv))
  quiet_logs()
  if FLAGS.multihost:
    parallel.init_distributed()
  try:
    launch.launch(
      resolve_config(),
      workdir=FLAGS.workdir,
      resume=FLAGS.resume,
      dry_run=FLAGS.dry_run,
      data_dir=FLAGS.data_dir,
    )
  except (
    ValueError,
    TypeError,
    KeyError,
    OSError,
    checkpoint.CheckpointError,
    epoch_loop.NonFiniteLossError,
  ) as e:
    sys.exit(f'error: {e}')


def usage_error(argv: Sequence[str]) -> str:
  """One line for arguments that are not flags (absl's UsageError would print the docstring)."""
  return (
    f'error: unexpected arguments {list(argv[1:])}; every setting is a flag --name=value '
    '(list them with --helpshort).'
  )
