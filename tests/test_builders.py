"""Real-data builders end to end on tiny fake raw clips written with PyAV (no TensorFlow)."""

import itertools
import pathlib
import shutil
import sys
import zipfile

import av
import numpy as np
import pytest

from mstrnn_jax.data import builders, fingerprint, pipeline, toy_videos

SUBJECTS = ('daria', 'denis', 'eli')
ACTIONS = ('pjump', 'wave1', 'wave2')
LENGTHS = {'pjump': 5, 'wave1': 6, 'wave2': 7}  # frames per raw clip


def write_clip(path, frames, fps=25):
  """Writes uint8 `[T, H, W, 3]` losslessly (toy_videos.write_clip at the Weizmann 25 fps)."""
  return toy_videos.write_clip(path, frames, fps)


def coded_frames(n, red, blue, h=16, w=20):
  """Solid frames: red and blue constant, green = 30 * frame index (mod 256)."""
  frames = np.zeros((n, h, w, 3), np.uint8)
  frames[..., 0], frames[..., 2] = red, blue
  frames[..., 1] = (30 * np.arange(n) % 256)[:, None, None]
  return frames


def make_weizmann(folder, subjects=SUBJECTS):
  folder.mkdir(parents=True, exist_ok=True)
  for si, s in enumerate(subjects):
    for ai, a in enumerate(ACTIONS):
      write_clip(folder / f'{s}_{a}.avi', coded_frames(LENGTHS[a], 60 + 60 * ai, 50 * si))


def test_weizmann_end_to_end(tmp_path):
  make_weizmann(tmp_path / 'downloads' / 'weizmann_3acwd')
  (tmp_path / 'downloads' / 'weizmann_3acwd' / 'denis_run.avi').write_bytes(b'other action')
  ds = pipeline.load_dataset('3acwd', data_dir=tmp_path)
  assert 'tensorflow' not in sys.modules
  assert ds.videos.shape[0] == 81 and ds.videos.shape[2:] == (83, 83, 3) and ds.crop_size == 73
  assert ds.subject_names == list(SUBJECTS) and ds.heads == (('action', 27),)
  for i, (s, label) in enumerate(zip(ds.subjects, ds.labels['action'])):
    assert i == 27 * s + label  # subject order, then class order
    triple = list(itertools.product(ACTIONS, repeat=3))[label]
    assert ds.class_names["action"][label] == "-".join({"pjump": "JP", "wave1": "OH",
                                                        "wave2": "TH"}[a] for a in triple)  # fmt: skip
    # Expected: concatenate the three clips, then keep every 2nd frame (frame rate halved).
    raw = np.concatenate([coded_frames(LENGTHS[a], 60 + 60 * ACTIONS.index(a), 50 * s)
                          for a in triple])[::2]  # fmt: skip
    assert ds.lengths[i] == len(raw)
    got = ds.videos[i, : len(raw), 40, 40].astype(int)
    np.testing.assert_allclose(got, raw[:, 0, 0].astype(int), atol=3)
    assert (ds.videos[i, len(raw) :] == ds.videos[i, len(raw) - 1]).all()
  spec = pipeline.dataset_spec('weizmann_3acwd', data_dir=tmp_path)
  assert (spec.t_max, spec.num_videos, spec.num_subjects) == (ds.t_max, 81, 3)
  assert ds.t_max == (3 * LENGTHS['wave2'] + 1) // 2


def test_weizmann_from_zip_files_matches_clips(tmp_path):
  make_weizmann(tmp_path / 'clips', SUBJECTS[:2])
  manual = tmp_path / 'zips' / 'downloads' / 'weizmann_3acwd'
  manual.mkdir(parents=True)
  for a in ACTIONS:
    with zipfile.ZipFile(manual / f'{a}.zip', 'w') as z:
      for s in SUBJECTS[:2]:
        z.write(tmp_path / 'clips' / f'{s}_{a}.avi', f'{s}_{a}.avi')
  shutil.move(tmp_path / 'clips', tmp_path / 'downloads' / 'weizmann_3acwd')
  from_zip = pipeline.load_dataset('weizmann_3acwd', data_dir=tmp_path / 'zips')
  from_avi = pipeline.load_dataset('weizmann_3acwd', data_dir=tmp_path)
  assert (from_zip.videos == from_avi.videos).all()
  assert (from_zip.labels['action'] == from_avi.labels['action']).all()


def test_missing_or_empty_manual_dir(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'(?s)does not exist.*pjump.zip.*weizmann.ac.il'):
    pipeline.load_dataset('weizmann_3acwd', data_dir=tmp_path)
  (tmp_path / 'downloads' / 'cl1ad').mkdir(parents=True)
  with pytest.raises(FileNotFoundError, match=r'(?s)is empty.*haanvid/CL1AD/releases'):
    pipeline.load_dataset('cl1ad', data_dir=tmp_path)
  spec = pipeline.dataset_spec('cl1ad', data_dir=tmp_path)
  assert spec.t_max is None and spec.frame_size == (118, 118) and spec.crop_size == 108


def test_weizmann_errors_name_the_file(tmp_path):
  manual = tmp_path / 'downloads' / 'weizmann_3acwd'
  make_weizmann(manual, SUBJECTS[:1])
  (manual / 'daria_wave2.avi').write_bytes(b'\x00not a video' * 50)
  with pytest.raises(ValueError, match='cannot decode .*daria_wave2.avi'):
    pipeline.load_dataset('weizmann_3acwd', data_dir=tmp_path)
  (manual / 'daria_wave2.avi').unlink()
  with pytest.raises(ValueError, match='missing clips daria_wave2.avi'):
    pipeline.load_dataset('weizmann_3acwd', data_dir=tmp_path)
  write_clip(manual / 'daria_wave.avi', coded_frames(3, 0, 0))
  with pytest.raises(ValueError, match="unknown Weizmann action 'wave'.*pjump.*wave2"):
    pipeline.load_dataset('weizmann_3acwd', data_dir=tmp_path)


def _frame_folder(folder, frames):
  folder.mkdir(parents=True)
  for i, f in enumerate(frames):  # names sort naturally: frame2 before frame10
    with av.open(str(folder / f'frame{i}.png'), 'w', format='image2') as c:
      s = c.add_stream('png')
      s.width, s.height, s.pix_fmt = f.shape[1], f.shape[0], 'rgb24'
      c.mux(s.encode(av.VideoFrame.from_ndarray(f, format='rgb24')))
      c.mux(s.encode())


def test_cl1ad_folder_layout(tmp_path):
  manual = tmp_path / 'downloads' / 'cl1ad'
  categories = ['Book-Change page', 'laptop-type', 'Cup-Blow']
  for si, s in enumerate(['s01', 's02']):
    for ci, cat in enumerate(categories):
      write_clip(manual / s / cat / 'take1.avi', coded_frames(24, 40 * ci, 100 * si), fps=60)
      _frame_folder(manual / s / cat / 'take2', coded_frames(12, 40 * ci + 20, 100 * si))
  ds = pipeline.load_dataset('cl1ad', data_dir=tmp_path)
  assert ds.heads == (('ado', 4), ('action', 9)) and ds.videos.shape[2:] == (118, 118, 3)
  assert len(ds) == 12 and ds.subject_names == ['s01', 's02'] and ds.crop_size == 108
  names = [(ds.class_names["ado"][o], ds.class_names["action"][a])
           for o, a in zip(ds.labels["ado"], ds.labels["action"])]  # fmt: skip
  # order: subject, category folder, clip (natural, case-insensitive name order)
  assert (
    names[:6] == [('book', 'change_page')] * 2 + [('cup', 'blow')] * 2 + [('laptop', 'type')] * 2
  )
  # 60 fps video -> every 6th frame (10 fps); frame folders are used as they are, in natural order
  assert list(ds.lengths[:2]) == [4, 12]
  np.testing.assert_allclose(ds.videos[0, :4, 50, 50, 1], [0, 180, 104, 28], atol=3)
  np.testing.assert_allclose(ds.videos[1, :12, 50, 50, 1], (30 * np.arange(12)) % 256, atol=3)


def test_cl2ad_manifest_and_label_errors(tmp_path):
  manual = tmp_path / 'downloads' / 'cl2ad'
  rows = [('a.avi', 'p1', 'Cup', 'Touch', '2 Times'), ('b.avi', 'p2', 'spray', 'move', 'to_left')]
  for i, row in enumerate(rows):
    write_clip(manual / 'clips' / row[0], coded_frames(5 + i, 10, 10), fps=10)
  lines = ['path,subject,ado,action,modifier'] + [f'clips/{r[0]},{",".join(r[1:])}' for r in rows]
  (manual / 'labels.csv').write_text('\n'.join(lines) + '\n')
  ds = pipeline.load_dataset('cl2ad', data_dir=tmp_path)
  assert [ds.class_names['modifier'][m] for m in ds.labels['modifier']] == ['2_times', 'to_left']
  assert list(ds.subjects) == [0, 1] and list(ds.lengths) == [5, 6]
  shutil.rmtree(tmp_path / 'cl2ad')  # prepared files; prepare again from a bad manifest
  (manual / 'labels.csv').write_text('\n'.join(lines + ['clips/a.avi,p1,cup,touch,4 times']) + '\n')
  with pytest.raises(ValueError, match=r"labels.csv line 4: unknown modifier '4 times'.*3_times"):
    pipeline.load_dataset('cl2ad', data_dir=tmp_path)


def test_builders_registry_names():
  assert set(builders.BUILDERS) == set(pipeline.REAL)


def test_weizmann_reprepares_when_raw_files_change(tmp_path):
  manual = tmp_path / 'downloads' / 'weizmann_3acwd'
  make_weizmann(manual, SUBJECTS[:2])
  assert pipeline.load_dataset('3acwd', data_dir=tmp_path).subject_names == list(SUBJECTS[:2])
  make_weizmann(manual, SUBJECTS)  # a subject added: prepared again, not silently ignored
  assert pipeline.load_dataset('3acwd', data_dir=tmp_path).subject_names == list(SUBJECTS)
  spec = pipeline.dataset_spec('3acwd', data_dir=tmp_path)
  assert spec.num_subjects == 3 and spec.num_videos == 81
  # raw files gone (e.g. deleted to save space): the prepared data is used as it is
  shutil.rmtree(manual)
  assert len(pipeline.load_dataset('3acwd', data_dir=tmp_path)) == 81


def test_killed_preparation_debris_is_removed(tmp_path, monkeypatch):
  manual = tmp_path / 'downloads' / 'weizmann_3acwd'
  make_weizmann(manual, SUBJECTS[:1])
  b = builders.builder('weizmann_3acwd', tmp_path)
  debris = pathlib.Path(b.data_dir).parent / f'incomplete.ABC123_{pathlib.Path(b.data_dir).name}'
  debris.mkdir(parents=True)
  (debris / 'half.array_record-00000-of-00001').write_bytes(b'x')
  assert len(pipeline.load_dataset('3acwd', data_dir=tmp_path)) == 27
  assert not debris.exists()
  # killed after the rename but before the fingerprint was written: prepared again
  (pathlib.Path(b.data_dir) / fingerprint.FILENAME).unlink()
  calls = []
  real = builders.Weizmann3acwd.download_and_prepare
  monkeypatch.setattr(builders.Weizmann3acwd, "download_and_prepare",
                      lambda self, **kw: calls.append(1) or real(self, **kw))  # fmt: skip
  assert len(pipeline.load_dataset('3acwd', data_dir=tmp_path)) == 27 and calls == [1]
  assert len(pipeline.load_dataset('3acwd', data_dir=tmp_path)) == 27 and calls == [1]


def test_weizmann_skip_incomplete_subjects(tmp_path):
  manual = tmp_path / 'downloads' / 'weizmann_3acwd'
  make_weizmann(manual)
  (manual / 'denis_wave1.avi').unlink()
  with pytest.raises(
    ValueError,
    match='missing clips denis_wave1.avi; add them, or leave out '
    'the subject.s. denis with the option skip_incomplete_subjects=True',
  ):
    pipeline.load_dataset('3acwd', data_dir=tmp_path)
  ds = pipeline.load_dataset('3acwd', data_dir=tmp_path, skip_incomplete_subjects=True)
  assert ds.subject_names == ['daria', 'eli'] and len(ds) == 54
  with pytest.raises(ValueError, match='takes only crop_margin, skip_incomplete_subjects, not fps'):
    pipeline.load_dataset('3acwd', data_dir=tmp_path, fps=3)
  with pytest.raises(ValueError, match='takes only crop_margin, not skip_incomplete_subjects'):
    pipeline.load_dataset('cl1ad', data_dir=tmp_path, skip_incomplete_subjects=True)
  # the option is part of the fingerprint: without it, the incomplete subject is an error again
  with pytest.raises(ValueError, match='missing clips denis_wave1.avi'):
    pipeline.load_dataset('3acwd', data_dir=tmp_path)
