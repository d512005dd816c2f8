"""Can a model count repeated events? Toy clips as a `folder:PATH` dataset (issue 8).

A square brightens (`--kind=blink`) or moves up and back (`--kind=bob`) 2 or 3 times within the
same window of frames (`toy_videos.count_events`); every clip has the same length and the same
summed signal, so neither tells the two classes apart (the lift levels sampled on whole frames
still differ by count unless `--subframe`: see `count_events`). Train on the folder like on any videos, e.g. the
quick preset on three folds:

    python benchmarks/count_probe.py --kind=bob --side=6 --amplitude=8 --out=/tmp/bob6a8
    python experiments/run.py --dataset=folder:/tmp/bob6a8 --config.data.folder.frame_size=36 \\
        --config.data.folder.crop_margin=4 --config.validation_subjects=1 --subjects=0,4,8 \\
        --model=lrcn --workdir=/tmp/bob6a8_lrcn

docs/fidelity.md section 0x compares the kinds with the stroke count of synthcl2.
"""

import sys

from absl import app
from absl import flags

from mstrnn_jax.data import export, toy_videos

_KIND = flags.DEFINE_enum('kind', 'bob', toy_videos.COUNT_KINDS, 'The repeated event.')
_SIDE = flags.DEFINE_integer('side', 6, 'Side of the square (pixels).')
_AMPLITUDE = flags.DEFINE_float(
  'amplitude', 8.0, 'bob: pixels moved up; blink: brightness added (fraction of full scale).'
)
_WINDOW = flags.DEFINE_integer('window', 12, 'Frames within which the 2 or 3 events happen.')
_LENGTH = flags.DEFINE_integer('length', 22, 'Frames per clip.')
_SEED = flags.DEFINE_integer('seed', 0, 'Generator seed.')
_SUBFRAME = flags.DEFINE_bool(
  'subframe', False, 'Start each window at a random fraction of a frame (no level cue).'
)
_OUT = flags.DEFINE_string('out', None, 'The new folder to write.', required=True)


def main(argv):
  del argv
  try:
    ds = toy_videos.count_events(
      _KIND.value,
      _SIDE.value,
      _AMPLITUDE.value,
      _WINDOW.value,
      _LENGTH.value,
      seed=_SEED.value,
      subframe=_SUBFRAME.value,
    )
    n = export.write_folder(ds, _OUT.value)
  except (ValueError, FileExistsError, OSError) as e:
    sys.exit(f'error: {e}')
  print(f'wrote {_OUT.value}: {n} clips of {_LENGTH.value} frames ({ds.source}); '
        f'train on it with --dataset=folder:{_OUT.value}')  # fmt: skip


if __name__ == '__main__':
  app.run(main)
