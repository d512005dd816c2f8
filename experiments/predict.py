"""Classify new clips with a trained run: per-frame probabilities and the voting-period decision.

    python experiments/predict.py --workdir=runs/RUN --video=clip.avi            # ensemble of folds
    python experiments/predict.py --workdir=runs/RUN --video=clips/ --fold=2     # one fold's model
    python experiments/predict.py --workdir=RUN --video=clip.avi --out=clip.gif  # and a figure

Prints the decisions and per-frame probabilities, writes predictions.json and predictions.csv to
--out_dir (default <workdir>/predictions/).  Logic: mstrnn_jax/predict.py.
"""

import os
import sys

from absl import app, flags

from mstrnn_jax import cli, predict

_WORKDIR = flags.DEFINE_string(
  'workdir', None, 'A workdir written by experiments/run.py or sweep.py.', required=True
)
_VIDEO = flags.DEFINE_string(
  'video', None, 'A video file, a folder of frame images, or a folder of clips.', required=True
)
_FOLD = flags.DEFINE_integer(
  'fold',
  None,
  "Use this fold's model (the held-out subject, or the "
  'fold number with --config.folds); default: --ensemble.',
)
_ENSEMBLE = flags.DEFINE_bool(
  'ensemble', False, "Average every fold's probabilities (the default when --fold is not given)."
)
_MODEL = flags.DEFINE_string('model', None, 'Model of the workdir (default: its first).')
_TAUS = flags.DEFINE_list('taus', None, 'Tau tuple of a sweep, e.g. 2,100 (default: the first).')
_EPOCH = flags.DEFINE_integer('epoch', None, 'Checkpoint epoch (default: the latest).')
_DATA_DIR = flags.DEFINE_string(
  'data_dir', None, 'Prepared datasets (only for workdirs without class names in experiment.json).'
)
_OUT_DIR = flags.DEFINE_string(
  'out_dir', None, 'Where predictions.json / .csv go (default <workdir>/predictions).'
)
_OUT = flags.DEFINE_string(
  'out', None, 'Also draw the probabilities under the frames: FILE.png or FILE.gif (animated).'
)
_FRAMES = flags.DEFINE_bool('frames', True, 'Print the per-frame probabilities too.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  cli.quiet_logs()
  try:
    if _ENSEMBLE.value and _FOLD.value is not None:
      raise ValueError('give --fold=K or --ensemble, not both.')
    taus = None if _TAUS.value is None else [float(t) for t in _TAUS.value]
    result = predict.predict(
      _WORKDIR.value,
      _VIDEO.value,
      model=_MODEL.value,
      fold=_FOLD.value,
      taus=taus,
      epoch=_EPOCH.value,
      data_dir=_DATA_DIR.value,
    )
    files = predict.write_outputs(
      result, _OUT_DIR.value or os.path.join(_WORKDIR.value, 'predictions')
    )
    figures = predict.write_figure(result, _OUT.value) if _OUT.value else []
  except (ValueError, FileNotFoundError, KeyError) as e:
    sys.exit(f'error: {e}')
  print(predict.format_table(result, frames=_FRAMES.value))
  print('Wrote ' + ', '.join(list(files.values()) + figures))


if __name__ == '__main__':
  app.run(main)
