"""What one frame tells: a linear probe per head on a single frame of each video (issue 8).

For each relative position q of a video's own length (subjects differ in tempo), the frame at
``round(q * (length - 1))`` is downsampled by 2, flattened and read by a one-vs-rest ridge
classifier under leave-one-subject-out (`analysis.loso_ridge_accuracy`). A head that one frame
already gives away does not need temporal integration, so it cannot favour a model for its
time scales. No training, no test-subject selection: every fold's probe is fitted on the
other subjects.

    python benchmarks/frame_probe.py --dataset=synthcl2 --positions=0.1,0.3,0.5,0.7,0.9
"""

from absl import app
from absl import flags
import numpy as np

from mstrnn_jax.analysis import loso_ridge_accuracy
from mstrnn_jax.data import pipeline

_DATASET = flags.DEFINE_string('dataset', 'synthcl2', 'Dataset name (synthetic or built).')
_POSITIONS = flags.DEFINE_list(
  'positions', ['0.1', '0.3', '0.5', '0.7', '0.9'], 'Relative frame positions in [0, 1].'
)
_L2 = flags.DEFINE_float('l2', 10.0, 'Ridge penalty.')


def frame_features(videos: np.ndarray, lengths: np.ndarray, q: float) -> np.ndarray:
  """[videos, features]: the frame at relative position q of each video, every 2nd pixel."""
  t = np.round(q * (lengths - 1)).astype(int)
  frames = videos[np.arange(len(videos)), t, ::2, ::2]
  return frames.reshape(len(videos), -1).astype(np.float64)


def main(argv):
  del argv
  ds = pipeline.load_dataset(_DATASET.value)
  positions = [float(q) for q in _POSITIONS.value]
  print(f'{ds.name}: {len(ds.subjects)} videos, {len(set(ds.subjects.tolist()))} subjects, '
        f'lengths {ds.lengths.min()}-{ds.lengths.max()}; LOSO ridge accuracy (%) of one frame')  # fmt: skip
  print('| head | chance | ' + ' | '.join(f'frame at {q:g}' for q in positions) + ' |')
  print('|---|---|' + '---|' * len(positions))
  for head, classes in ds.heads:
    accs = [
      100
      * loso_ridge_accuracy(
        frame_features(ds.videos, ds.lengths, q), ds.labels[head], ds.subjects, classes, _L2.value
      )
      for q in positions
    ]
    row = ' | '.join(f'{a:.1f}' for a in accs)
    print(f'| {head} | {100 / classes:.1f} | {row} |')


if __name__ == '__main__':
  app.run(main)
