"""PCA trajectories (Figs. 5 and 8), end-point separation, early recognition and confusions of a
trained run.

    python experiments/analyze.py --workdir=runs/default --fold=0
    python experiments/analyze.py --workdir=RUN --fold=3 --sequences=JP-JP-JP,OH-JP-JP,TH-JP-JP
    python experiments/analyze.py --workdir=SWEEP --fold=0 --taus=2,100 --models=mstrnn

Writes pca_trajectories.png, early_recognition.png, analysis.json and analysis.md to
--out_dir (default <workdir>/analysis/fold<K>/) and prints analysis.md.
"""

import sys

from absl import app
from absl import flags

from mstrnn_jax import analysis, checkpoint, cli

_WORKDIR = flags.DEFINE_string(
  'workdir', None, 'A workdir written by experiments/run.py or sweep.py.', required=True
)
_FOLD = flags.DEFINE_integer(
  'fold',
  0,
  'Fold = index of the held-out subject whose videos are analysed '
  '(the fold number with --config.folds).',
)
_SEQUENCES = flags.DEFINE_list(
  'sequences',
  None,
  "Video names (class names over the heads joined by '-'); the first is the "
  'reference of the end-point separation. Default: synth3a / 3ACWD JP-JP-JP,OH-OH-OH,TH-TH-TH,'
  'OH-JP-JP,TH-JP-JP; synthcl1 / CL1AD laptop-sweep,laptop-close; other datasets (folder:PATH): '
  'their own classes.',
)
_MODELS = flags.DEFINE_list('models', None, 'Models of the workdir to analyse (default: all).')
_TAUS = flags.DEFINE_list(
  'taus', None, 'Tau tuple to analyse when the workdir is a sweep, e.g. 2,100.'
)
_EPOCH = flags.DEFINE_integer('epoch', None, 'Checkpoint epoch (default: the latest).')
_DATA_DIR = flags.DEFINE_string(
  'data_dir', None, 'Where real datasets are prepared (default: data/).'
)
_OUT_DIR = flags.DEFINE_string(
  'out_dir', None, 'Output folder (default: <workdir>/analysis/fold<K>).'
)
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 16, 'Videos evaluated at once.')


def main(argv):
  if len(argv) > 1:
    sys.exit(cli.usage_error(argv))
  cli.quiet_logs()  # orbax logs every restore, TFDS every read at INFO
  try:
    taus = None if _TAUS.value is None else list(cli.numbers(_TAUS.value, float, 'taus'))
    result = analysis.analyze_run(
      _WORKDIR.value,
      _FOLD.value,
      _SEQUENCES.value,
      models=_MODELS.value,
      taus=taus,
      epoch=_EPOCH.value,
      data_dir=_DATA_DIR.value,
      out_dir=_OUT_DIR.value,
      batch_size=_BATCH_SIZE.value,
    )
  except (ValueError, KeyError, OSError, checkpoint.CheckpointError) as e:
    sys.exit(f'error: {e}')
  with open(result['files']['markdown']) as f:
    print(f.read())
  print('Wrote ' + ', '.join(result['files'].values()))


if __name__ == '__main__':
  app.run(main)
