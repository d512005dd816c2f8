"""Time-constant sensitivity (Table VI): every (tau1, tau2) pair x every fold in one program.

    python experiments/sweep.py --dataset=synthcl2 --tau1=2,50,100 --tau2=50,100,150
    python experiments/sweep.py --dataset=cl2ad --tau1=2,50,100 --tau2=50,100,150  # paper

Writes the Table VI layout to results.md, a heat-map PNG per category (heatmap_<model>_<cat>.png)
and everything experiments/run.py writes.
"""
import itertools

import sys

from absl import app
from absl import flags
from absl import logging

from mstrnn_jax import loso, parallel, presets

_DATASET = flags.DEFINE_enum('dataset', 'synthcl2', presets.DATASETS, 'Dataset.')
_MODEL = flags.DEFINE_enum('model', 'mstrnn', ('mstrnn', 'mstnn'), 'Model family with taus.')
_PRESET = flags.DEFINE_enum('preset', None, presets.PRESETS,
                            'Experiment preset (default: quick for synthetic, paper otherwise).')
_TAU1 = flags.DEFINE_list('tau1', ['2', '50', '100'], 'Values of tau1 (rows).')
_TAU2 = flags.DEFINE_list('tau2', ['50', '100', '150'], 'Values of tau2 (columns).')
_EPOCHS = flags.DEFINE_integer('epochs', None, 'Training epochs (default: the preset).')
_BATCH = flags.DEFINE_integer('batch_size', None, 'Mini-batch size (default: the preset).')
_SUBJECTS = flags.DEFINE_list('subjects', None, 'Held-out subjects to run (default: all).')
_SEED = flags.DEFINE_integer('seed', None, 'Random seed (default 0).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder (default runs/<...>-<time>).')
_RESUME = flags.DEFINE_bool('resume', False, 'Continue the sweep in --workdir.')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the summary and step cost; no training.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Prepared real datasets (default: data/).')
_CKPT = flags.DEFINE_integer('checkpoint_every', None, 'Epochs between checkpoints.')
_MULTIHOST = flags.DEFINE_bool('multihost', False, 'Call jax.distributed.initialize() first.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  if _MULTIHOST.value:
    parallel.init_distributed()
  try:
    pairs = list(itertools.product([float(t) for t in _TAU1.value],
                                   [float(t) for t in _TAU2.value]))
    exp, models = loso.make_experiment(
        _DATASET.value, _PRESET.value, model=_MODEL.value, tau_pairs=pairs,
        epochs=_EPOCHS.value, batch_size=_BATCH.value, subjects=_SUBJECTS.value,
        seed=_SEED.value, checkpoint_every=_CKPT.value)
    loso.launch(exp, models, workdir=_WORKDIR.value, resume=_RESUME.value,
                dry_run=_DRY_RUN.value, data_dir=_DATA_DIR.value)
  except (ValueError, FileNotFoundError, FileExistsError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  app.run(main)
