"""folder:PATH datasets (your own videos) on tiny clips written with PyAV."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mstrnn_jax.data import describe, fingerprint, folder, pipeline, preview, toy_videos
import subproc

SIZE = 16


@pytest.fixture
def clips(tmp_path):
  """3 subjects x {left, right} x 2 clips of 6 frames, 16x16 (see toy_videos.make_folder)."""
  return toy_videos.make_folder(tmp_path / 'videos', subjects=3, length=6, size=SIZE)


def load(root, data_dir, **kw):
  return pipeline.load_dataset(f'folder:{root}', data_dir=data_dir, frame_size=SIZE, **kw)


def test_folder_layout_labels_subjects_and_frames(clips, tmp_path):
  ds = load(clips, tmp_path / 'data', crop_margin=2)
  assert ds.heads == (('class', 2),) and ds.class_names == {'class': ['left', 'right']}
  assert ds.subject_names == ['subject0', 'subject1', 'subject2']
  assert ds.videos.shape == (12, 6, SIZE, SIZE, 3) and ds.crop_size == SIZE - 2
  # order: subject, class folder, clip
  assert list(ds.subjects) == [0] * 4 + [1] * 4 + [2] * 4
  assert list(ds.labels['class']) == [0, 0, 1, 1] * 3
  rng = np.random.default_rng([0, 1, 1])  # subject1, clip1, class left (same size: exact pixels)
  np.testing.assert_allclose(
    ds.videos[5].astype(int), toy_videos.moving_square('left', 6, SIZE, rng).astype(int), atol=2
  )
  # right = left reversed in time: one frame alone cannot tell them apart
  np.testing.assert_allclose(ds.videos[7].astype(int), ds.videos[5][::-1].astype(int), atol=2)
  spec = pipeline.dataset_spec(f"folder:{clips}", data_dir=tmp_path / "data", frame_size=SIZE,
                               crop_margin=2)  # fmt: skip
  assert (spec.t_max, spec.num_videos, spec.num_subjects, spec.crop_size) == (6, 12, 3, SIZE - 2)
  folds = pipeline.loso_folds(ds)
  assert [f.test_subjects for f in folds] == [(0,), (1,), (2,)]


def test_frame_folder_clips(clips, tmp_path):
  frames = toy_videos.moving_square('right', 12, SIZE, np.random.default_rng(3))
  toy_videos.write_frames(clips / 'subject0' / 'right' / 'clip9', frames)
  ds = load(clips, tmp_path / 'd1')
  i = 3  # subject0: left/clip0, left/clip1, right/clip0, right/clip1 (3), right/clip9 (4)
  assert len(ds) == 13 and ds.lengths[i + 1] == 12 and ds.labels['class'][i + 1] == 1
  np.testing.assert_array_equal(ds.videos[i + 1], frames)  # PNG is lossless; t_max = 12
  ds = load(clips, tmp_path / 'd2', fps=5, frame_step=3, max_frames=3)  # fps: video files only
  np.testing.assert_array_equal(ds.videos[i + 1, :3], frames[::3][:3])
  assert ds.lengths[i + 1] == 3 and ds.lengths[0] == 1  # 6 frames at 10 fps: every 2*3-th


def test_options_subsample_and_truncate(clips, tmp_path):
  ds = load(clips, tmp_path / 'd1', frame_step=2)
  full = load(clips, tmp_path / 'd2')
  assert ds.t_max == 3
  np.testing.assert_array_equal(ds.videos, full.videos[:, ::2])
  ds = load(clips, tmp_path / 'd3', fps=5)  # clips are written at 10 fps: every 2nd frame
  np.testing.assert_array_equal(ds.videos, full.videos[:, ::2])
  ds = load(clips, tmp_path / 'd4', max_frames=4)
  np.testing.assert_array_equal(ds.videos, full.videos[:, :4])
  with pytest.raises(ValueError, match='frame_step must be an integer >= 1'):
    load(clips, tmp_path / 'd5', frame_step=0)
  with pytest.raises(ValueError, match='unknown option.*speed'):
    load(clips, tmp_path / 'd5', speed=2)
  with pytest.raises(ValueError, match='crop_margin must be an integer in 0..15'):
    load(clips, tmp_path / 'd5', crop_margin=16)


def test_fingerprint_reprepares_on_add_remove_change(clips, tmp_path):
  data = tmp_path / 'data'
  assert len(load(clips, data)) == 12
  prepared = folder.prepared_dir(clips.resolve(), data)
  before = (prepared / folder.META).stat().st_mtime_ns
  assert len(load(clips, data)) == 12 and (prepared / folder.META).stat().st_mtime_ns == before
  # added: a new subject
  rng = np.random.default_rng(5)
  toy_videos.write_clip(clips / "subject3" / "left" / "a.avi",
                        toy_videos.moving_square("left", 9, SIZE, rng))  # fmt: skip
  ds = load(clips, data)
  assert len(ds) == 13 and ds.subject_names[-1] == 'subject3' and ds.t_max == 9
  # changed: same name, other content (and mtime)
  path = clips / 'subject3' / 'left' / 'a.avi'
  toy_videos.write_clip(path, toy_videos.moving_square('left', 7, SIZE, rng))
  os.utime(path, ns=(1, 1))
  ds = load(clips, data)
  assert ds.lengths[-1] == 7 and ds.t_max == 7
  # removed
  shutil.rmtree(clips / 'subject3')
  assert load(clips, data).subject_names == ['subject0', 'subject1', 'subject2']
  # other options: prepared again in the same place
  assert load(clips, data, frame_step=3).t_max == 2
  assert [p.name for p in prepared.parent.iterdir() if p.suffix != '.lock'] == [prepared.name]


def test_killed_preparation_leaves_no_debris(clips, tmp_path, monkeypatch):
  data = tmp_path / 'data'

  def killed(*a, **k):
    raise KeyboardInterrupt

  monkeypatch.setattr(fingerprint, 'save', killed)
  with pytest.raises(KeyboardInterrupt):
    load(clips, data)
  monkeypatch.undo()
  prepared = folder.prepared_dir(clips.resolve(), data)
  assert not prepared.exists()
  assert [p.name for p in prepared.parent.iterdir()] == [prepared.name + '.lock']
  debris = prepared.with_name(prepared.name + '.incomplete-dead')  # e.g. after kill -9
  debris.mkdir()
  assert len(load(clips, data)) == 12 and not debris.exists()


def test_bad_clips_error_or_skip_with_count(clips, tmp_path):
  bad = clips / 'subject1' / 'right' / 'broken.mp4'
  bad.write_bytes(b'\x00not a video' * 20)
  with pytest.raises(ValueError, match=f'bad clip: cannot decode {bad}: .*skip_bad_clips=True'):
    load(clips, tmp_path / 'data')
  (clips / 'subject2' / 'left' / 'notes.txt').write_text('hi')
  with pytest.raises(ValueError, match='bad clip: .*notes.txt: not a video'):
    load(clips, tmp_path / 'data')
  ds = load(clips, tmp_path / 'data', skip_bad_clips=True)
  assert len(ds) == 12
  skipped = folder.skipped(f"folder:{clips}", tmp_path / "data", frame_size=SIZE,
                           skip_bad_clips=True)  # fmt: skip
  assert sorted(s["path"] for s in skipped) == ["subject1/right/broken.mp4",
                                                "subject2/left/notes.txt"]  # fmt: skip
  text = describe.describe(f"folder:{clips}", tmp_path / "data", frame_size=SIZE,
                           skip_bad_clips=True)  # fmt: skip
  assert 'skipped     2 unreadable clip(s)' in text and 'broken.mp4' in text


def test_other_files_beside_the_folders_are_ignored(clips, tmp_path):
  (clips / 'README.txt').write_text('my videos')
  (clips / 'subject0' / 'notes.md').write_text('recorded on monday')
  assert len(load(clips, tmp_path / 'data')) == 12


def test_layout_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='is not a folder of videos'):
    load(tmp_path / 'missing', tmp_path / 'data')
  (tmp_path / 'v' / 's1').mkdir(parents=True)
  (tmp_path / 'v' / 's1' / 'clip.avi').write_bytes(b'')
  with pytest.raises(
    ValueError,
    match=r's1/clip.avi: a video here is misplaced, .*s1 should '
    'hold only class folders',
  ):
    load(tmp_path / 'v', tmp_path / 'data')
  (tmp_path / 'v' / 's1' / 'clip.avi').unlink()
  with pytest.raises(ValueError, match='no readable clips found'):
    load(tmp_path / 'v', tmp_path / 'data')


def test_manifest_multi_head(clips, tmp_path):
  lines = ['path,subject,direction,speed']
  for s in range(3):
    for c in ('left', 'right'):
      for j in range(2):
        lines.append(f'subject{s}/{c}/clip{j}.avi,person{s},{c},{"slow" if j else "fast"}')
  (clips / 'labels.csv').write_text('\n'.join(lines) + '\n')
  ds = load(clips, tmp_path / 'data')
  assert ds.heads == (('direction', 2), ('speed', 2)) and ds.subject_names[0] == 'person0'
  assert ds.class_names['speed'] == ['fast', 'slow']
  assert list(ds.labels['speed'][:4]) == [0, 1, 0, 1]
  # a clip outside PATH is fingerprinted too: changing it prepares again
  outside = toy_videos.write_clip(tmp_path / 'elsewhere.avi', ds.videos[0][:3])
  (clips / 'labels.csv').write_text('\n'.join(lines + ['../elsewhere.avi,person3,left,fast']))
  assert load(clips, tmp_path / 'data').lengths[-1] == 3
  toy_videos.write_clip(outside, ds.videos[0][:5])
  assert load(clips, tmp_path / 'data').lengths[-1] == 5
  (clips / 'labels.csv').write_text('\n'.join(lines + ['nothere.avi,person0,left,fast']) + '\n')
  with pytest.raises(ValueError, match='nothere.avi: labels.csv line 14: does not exist'):
    load(clips, tmp_path / 'data')
  (clips / 'labels.csv').write_text('file,subject,direction\n')
  with pytest.raises(ValueError, match='labels.csv: needs a header row with the columns path'):
    load(clips, tmp_path / 'data')


def test_grouped_folds(clips, tmp_path):
  ds = load(clips, tmp_path / 'data')
  folds = pipeline.loso_folds(ds, folds=2)
  assert [f.test_subjects for f in folds] == [(0, 1), (2,)]
  assert [f.test_subject for f in folds] == [0, 1]
  for f in folds:
    assert sorted(np.concatenate([f.train_idx, f.test_idx])) == list(range(len(ds)))
    assert set(ds.subjects[f.test_idx]) == set(f.test_subjects)
    assert not set(ds.subjects[f.train_idx]) & set(f.test_subjects)
  with pytest.raises(ValueError, match='folds must be an integer in 2..3'):
    pipeline.loso_folds(ds, folds=4)


def _cli(module, *args):
  return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                        check=False, env=subproc.cpu_env())  # fmt: skip


def test_describe_and_preview_commands(clips, tmp_path):
  data = f'--data_dir={tmp_path / "data"}'
  out = _cli('mstrnn_jax.data.describe', f'--dataset=folder:{clips}', data, '--frame_size=16')
  assert out.returncode == 0, out.stderr
  assert 'videos      12 from 3 subjects' in out.stdout
  assert 'head        class: 2 classes: left, right' in out.stdout
  png = tmp_path / 'sheet.png'
  out = _cli("mstrnn_jax.data.preview", f"--dataset=folder:{clips}", data, "--frame_size=16",
             f"--out={png}")  # fmt: skip
  assert out.returncode == 0 and png.is_file(), out.stderr
  assert len(preview.pick_videos(load(clips, tmp_path / 'data'), 8)) == 2


@pytest.mark.parametrize('module', ['mstrnn_jax.data.describe', 'mstrnn_jax.data.preview'])
def test_commands_one_line_errors(clips, tmp_path, module):
  (clips / 'subject0' / 'left' / 'clip0.avi').write_bytes(b'garbage')
  out = _cli(
    module,
    f'--dataset=folder:{clips}',
    f'--data_dir={tmp_path / "data"}',
    f'--out={tmp_path / "x.png"}' if 'preview' in module else '--frame_size=16',
  )
  assert out.returncode == 1
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: bad clip: ') and 'clip0.avi' in lines[0]


def test_concurrent_preparations_wait_for_each_other(clips, tmp_path):
  import concurrent.futures

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    a, b = pool.map(lambda _: load(clips, tmp_path / 'data'), range(2))
  np.testing.assert_array_equal(a.videos, b.videos)
  prepared = folder.prepared_dir(clips.resolve(), tmp_path / 'data')
  assert sorted(p.name for p in prepared.parent.iterdir()) == [prepared.name,
                                                               prepared.name + ".lock"]  # fmt: skip
