"""Contact sheets (PNG) and animated previews (GIF) of a dataset.

  python -m mstrnn_jax.data.preview --dataset=synth3a --out=docs/images/synth3a.png
  python -m mstrnn_jax.data.preview --dataset=synthcl2 --out=/tmp/cl2.png --gif=/tmp/cl2.gif
  python -m mstrnn_jax.data.preview --dataset=folder:/my/videos --out=/tmp/mine.png

Each row is one video (a different class per row, subjects cycling), each column a time step.
"""

from __future__ import annotations

import io
import pathlib
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from PIL import Image  # noqa: E402  (Pillow: a dependency of matplotlib)

from mstrnn_jax.data import describe, pipeline  # noqa: E402
from mstrnn_jax.data.dataset import Dataset  # noqa: E402


def video_name(ds: Dataset, i: int) -> str:
  """'subject3: book / open' style label of video i."""
  labels = ' / '.join(ds.class_names[h][ds.labels[h][i]] for h, _ in ds.heads)
  return f'{ds.subject_names[ds.subjects[i]]}: {labels}'


def pick_videos(ds: Dataset, rows: int) -> np.ndarray:
  """`rows` videos of distinct joint classes spread over the class list, subjects cycling."""
  joint = np.zeros(len(ds), np.int64)
  for head, k in ds.heads:
    joint = joint * k + ds.labels[head]
  classes = np.unique(joint)
  wanted = classes[np.linspace(0, len(classes) - 1, min(rows, len(classes))).round().astype(int)]
  picks = []
  for r, c in enumerate(wanted):
    candidates = np.nonzero(joint == c)[0]
    by_subject = [i for i in candidates if ds.subjects[i] == r % ds.num_subjects]
    picks.append(by_subject[0] if by_subject else candidates[0])
  return np.array(picks)


def contact_sheet(videos: np.ndarray, frame_step: int, gap: int = 1) -> np.ndarray:
  """Tiles `[rows, time, H, W, 3]` uint8 into one image: rows x (time / frame_step) frames."""
  v = videos[:, ::frame_step]
  r, t, h, w, _ = v.shape
  sheet = np.full((r * (h + gap) - gap, t * (w + gap) - gap, 3), 255, np.uint8)
  for i in range(r):
    for j in range(t):
      sheet[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = v[i, j]
  return sheet


def save_png(ds: Dataset, path, rows: int = 8, frame_step: int = 2, scale: float = 2.0) -> list:
  """Writes a labelled contact sheet; returns the indices of the videos shown."""
  idx = pick_videos(ds, rows)
  sheet = contact_sheet(ds.videos[idx], frame_step)
  h, w = sheet.shape[:2]
  label_w = 2.3
  fig = plt.figure(figsize=(label_w + scale * w / 100, 0.4 + scale * h / 100), dpi=100)
  ax = fig.add_axes([label_w / fig.get_figwidth(), 0.02, 1 - label_w / fig.get_figwidth() - 0.005,
                     1 - 0.4 / fig.get_figheight()])  # fmt: skip
  ax.imshow(sheet, interpolation='nearest')
  fh = ds.videos.shape[2] + 1
  ax.set_yticks([fh * i + fh / 2 - 1 for i in range(len(idx))])
  ax.set_yticklabels([video_name(ds, i) for i in idx], fontsize=7)
  fw = ds.videos.shape[3] + 1
  cols = range(0, ds.t_max, frame_step)
  ax.set_xticks([fw * j + fw / 2 - 1 for j in range(len(cols))])
  ax.set_xticklabels([str(t) for t in cols], fontsize=6)
  ax.tick_params(length=0)
  ax.set_title(f'{ds.name} ({ds.source}): rows = videos, columns = time steps', fontsize=8)
  for s in ax.spines.values():
    s.set_visible(False)
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png')
  plt.close(fig)
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  # A 256-colour palette keeps the file small (the frames are noisy, so RGB PNGs compress badly).
  Image.open(buffer).convert('RGB').quantize(256).save(path, optimize=True)
  return list(idx)


def save_gif(ds: Dataset, path, rows: int = 8, columns: int = 4, scale: int = 3, fps: int = 8):
  """Writes an animated grid of `rows * columns` videos (distinct classes)."""
  idx = pick_videos(ds, rows * columns)
  h, w = ds.videos.shape[2:4]
  frames = []
  for t in range(ds.t_max):
    tiles = ds.videos[idx, t]
    tiles = np.concatenate([tiles, np.full((rows * columns - len(idx), h, w, 3), 255, np.uint8)])
    img = (
      tiles.reshape(rows, columns, h, w, 3)
      .transpose(0, 2, 1, 3, 4)
      .reshape(rows * h, columns * w, 3)
    )
    frames.append(
      Image.fromarray(img).resize((columns * w * scale, rows * h * scale), Image.NEAREST)
    )
  pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
  frames[0].save(path, save_all=True, append_images=frames[1:], duration=1000 // fps, loop=0)


FLAGS = flags.FLAGS


def _define_flags():
  """Command-line flags (defined only when run as a program, so imports never clash)."""
  describe.define_dataset_flags()
  flags.DEFINE_string('out', None, 'PNG contact sheet to write', required=True)
  flags.DEFINE_string('gif', None, 'optional animated GIF to write')
  flags.DEFINE_integer('rows', 8, 'videos in the contact sheet')
  flags.DEFINE_integer('show_every', 2, 'show every n-th frame in the contact sheet')


def main(argv):
  del argv
  try:
    ds = pipeline.load_dataset(FLAGS.dataset, FLAGS.data_dir, **describe.dataset_kwargs())
    shown = save_png(ds, FLAGS.out, FLAGS.rows, FLAGS.show_every)
    print(f'wrote {FLAGS.out}: {len(shown)} videos')
    if FLAGS.gif:
      save_gif(ds, FLAGS.gif)
      print(f'wrote {FLAGS.gif}')
  except (ValueError, FileNotFoundError, OSError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
