"""LOSO training of MSTRNN / MSTNN / LRCN: all folds (and tau pairs) in one compiled program.

    python experiments/run.py                       # main job: MSTRNN, synth3a, 9 folds, quick
    python experiments/run.py --model=all           # the three models side by side (Tables III-V)
    python experiments/run.py --dataset=cl1ad --tau1=2 --tau2=100      # paper protocol on CL1AD
    python experiments/run.py --workdir=runs/x --resume                # continue after a kill
    python experiments/run.py --dry_run             # summary, parameter counts, step cost

Writes results.json / results.md / metrics.csv / curves / TensorBoard events / checkpoints to
--workdir (default runs/<dataset>-<model>-<timestamp>) and prints the final table.
"""
import sys

from absl import app
from absl import flags
from absl import logging

from mstrnn_jax import loso, parallel, presets

_DATASET = flags.DEFINE_enum('dataset', 'synth3a', presets.DATASETS, 'Dataset.')
_MODEL = flags.DEFINE_enum('model', 'mstrnn', presets.MODELS + ('all',), 'Model family.')
_PRESET = flags.DEFINE_enum('preset', None, presets.PRESETS,
                            'Experiment preset (default: quick for synthetic, paper otherwise).')
_TAU1 = flags.DEFINE_float('tau1', None, 'Time constant of the first context / leaky layer.')
_TAU2 = flags.DEFINE_float('tau2', None, 'Time constant of the second context / leaky layer.')
_EPOCHS = flags.DEFINE_integer('epochs', None, 'Training epochs (default: the preset).')
_BATCH = flags.DEFINE_integer('batch_size', None, 'Mini-batch size (default: the preset).')
_SUBJECTS = flags.DEFINE_list('subjects', None, 'Held-out subjects to run (default: all).')
_SEED = flags.DEFINE_integer('seed', None, 'Random seed (default 0).')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output folder (default runs/<...>-<time>).')
_RESUME = flags.DEFINE_bool('resume', False, 'Continue the run in --workdir from its checkpoint.')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the summary and step cost; no training.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Prepared real datasets (default: data/).')
_CKPT = flags.DEFINE_integer('checkpoint_every', None, 'Epochs between checkpoints.')
_VOTE = flags.DEFINE_enum('vote_rule', None, ('vote', 'mean_prob'),
                          'Voting-period prediction rule (default: vote).')
_MULTIHOST = flags.DEFINE_bool('multihost', False, 'Call jax.distributed.initialize() first.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  if _MULTIHOST.value:
    parallel.init_distributed()
  if (_TAU1.value is None) != (_TAU2.value is None):
    raise app.UsageError('Give both --tau1 and --tau2 (or neither for the defaults 2 and 100).')
  taus = None if _TAU1.value is None else [(_TAU1.value, _TAU2.value)]
  try:
    exp, models = loso.make_experiment(
        _DATASET.value, _PRESET.value, model=_MODEL.value, tau_pairs=taus, epochs=_EPOCHS.value,
        batch_size=_BATCH.value, subjects=_SUBJECTS.value, seed=_SEED.value,
        checkpoint_every=_CKPT.value, vote_rule=_VOTE.value)
    loso.launch(exp, models, workdir=_WORKDIR.value, resume=_RESUME.value,
                dry_run=_DRY_RUN.value, data_dir=_DATA_DIR.value)
  except (ValueError, FileNotFoundError, FileExistsError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  app.run(main)
