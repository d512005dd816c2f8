"""describe / preview commands."""

import subprocess
import sys

import numpy as np
from PIL import Image

from mstrnn_jax.data import describe, pipeline, preview

SMALL = dict(frame_size=16, crop_margin=2, num_subjects=3)


def test_describe_counts():
  text = describe.describe('synthcl1', **SMALL)
  assert 'videos      270 from 3 subjects' in text
  assert 'per subject subject0: 90, subject1: 90, subject2: 90' in text
  assert 'head        ado: 4 classes: book, laptop, bottle, cup' in text
  assert 'frames      16x16, crop 14x14' in text
  t_max = pipeline.dataset_spec('synthcl1', **SMALL).t_max
  assert f'T_max       {t_max}\n' in text and f'padded to T_max={t_max}' in text


def test_describe_command_explains_missing_real_data(tmp_path):
  out = subprocess.run(
      [sys.executable, "-m", "mstrnn_jax.data.describe", "--dataset=cl1ad",
       f"--data_dir={tmp_path}"],
      capture_output=True, text=True, check=False,
  )  # fmt: skip
  assert out.returncode == 1
  assert 'frames      118x118, crop 108x108' in out.stdout
  assert f'{tmp_path}/downloads/cl1ad does not exist' in out.stdout
  assert 'https://github.com/haanvid/CL1AD/releases' in out.stdout


def test_contact_sheet_layout():
  videos = np.arange(2 * 4 * 3 * 5 * 3, dtype=np.uint8).reshape(2, 4, 3, 5, 3)
  sheet = preview.contact_sheet(videos, frame_step=2, gap=1)
  assert sheet.shape == (2 * 4 - 1, 2 * 6 - 1, 3)
  np.testing.assert_array_equal(sheet[4:7, 6:11], videos[1, 2])
  assert (sheet[3] == 255).all() and (sheet[:, 5] == 255).all()


def test_preview_png_shows_distinct_classes(tmp_path):
  ds = pipeline.load_dataset('synth3a', **SMALL)
  idx = preview.save_png(ds, tmp_path / 's.png', rows=5)
  assert len({int(ds.labels['action'][i]) for i in idx}) == 5
  assert [int(ds.subjects[i]) for i in idx] == [0, 1, 2, 0, 1]
  assert Image.open(tmp_path / 's.png').size[0] > 100
  preview.save_gif(ds, tmp_path / 's.gif', rows=2, columns=2)
  assert 1 < Image.open(tmp_path / 's.gif').n_frames <= ds.t_max  # Pillow merges equal frames


def test_describe_bad_real_clip_is_one_line_error(tmp_path):
  from test_builders import make_weizmann

  manual = tmp_path / 'downloads' / 'weizmann_3acwd'
  make_weizmann(manual, ('daria',))
  (manual / 'daria_wave2.avi').write_bytes(b'\x00not a video' * 50)
  out = subprocess.run(
      [sys.executable, "-m", "mstrnn_jax.data.describe", "--dataset=3acwd",
       f"--data_dir={tmp_path}"],
      capture_output=True, text=True, check=False,
  )  # fmt: skip
  assert out.returncode == 1 and 'Traceback' not in out.stderr
  assert out.stderr.strip().splitlines()[-1].startswith('error: cannot decode ')
  assert 'daria_wave2.avi' in out.stderr.strip().splitlines()[-1]
