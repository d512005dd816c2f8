"""data/export.py: a dataset (or a slice) written as folder:PATH reads back as the same videos."""

import numpy as np
import pytest

from mstrnn_jax.data import export, pipeline, tabletop

SIZE = 16
OPTIONS = dict(num_subjects=2, frame_size=SIZE, crop_margin=4)


@pytest.fixture(scope='module')
def cl2():
  return tabletop.synthcl2(**OPTIONS)


def load(root, data_dir):
  return pipeline.load_dataset(f'folder:{root}', data_dir, frame_size=SIZE, crop_margin=4)


def test_count_slice_round_trip(cl2, tmp_path):
  keep = export.select(cl2, {'action': ['touch', 'sweep']})
  assert keep.sum() == 2 * 14 * 2  # subjects x count triplets x videos per triplet
  n = export.write_folder(cl2, tmp_path / 'count', keep, heads=['modifier'])
  assert n == keep.sum() and not (tmp_path / 'count' / 'labels.csv').exists()
  assert sorted(p.name for p in (tmp_path / 'count' / 'subject1').iterdir()) == [
    '2_times',
    '3_times',
  ]
  ds = load(tmp_path / 'count', tmp_path / 'data')
  assert ds.class_names == {'class': ['2_times', '3_times']}
  # folder order: subject, class folder, clip (= source index)
  idx = sorted(np.flatnonzero(keep), key=lambda i: (cl2.subjects[i], cl2.labels['modifier'][i], i))
  np.testing.assert_array_equal(ds.lengths, cl2.lengths[idx])
  np.testing.assert_array_equal(ds.subjects, cl2.subjects[idx])
  np.testing.assert_array_equal(ds.labels['class'], cl2.labels['modifier'][idx] - 4)
  for j, i in enumerate(idx):  # PNG frames are lossless: the same pixels
    np.testing.assert_array_equal(ds.videos[j, : ds.lengths[j]], cl2.videos[i, : cl2.lengths[i]])


def test_all_heads_write_a_manifest(cl2, tmp_path):
  keep = export.select(cl2, {'ado': ['cup'], 'action': ['move']})
  assert keep.sum() == 2 * 4 * 2 and (cl2.labels['ado'][keep] == 2).all()
  export.write_folder(cl2, tmp_path / 'cups', keep)
  ds = load(tmp_path / 'cups', tmp_path / 'data')
  assert [h for h, _ in ds.heads] == ['ado', 'action', 'modifier']
  assert ds.class_names['modifier'] == ['to_back', 'to_front', 'to_left', 'to_right']
  np.testing.assert_array_equal(ds.videos, cl2.videos[keep][:, : ds.videos.shape[1]])


def test_errors_name_the_problem(cl2, tmp_path):
  with pytest.raises(ValueError, match="no head 'verb'.*ado, action, modifier"):
    export.select(cl2, {'verb': ['touch']})
  with pytest.raises(ValueError, match="'action' has no class tap; its classes: move"):
    export.select(cl2, {'action': ['tap']})
  with pytest.raises(ValueError, match="no head 'verb'"):
    export.write_folder(cl2, tmp_path / 'verb', heads=['verb'])
  with pytest.raises(ValueError, match='no video matches'):
    export.write_folder(cl2, tmp_path / 'none', export.select(cl2, {'action': []}))
  (tmp_path / 'taken').mkdir()
  with pytest.raises(FileExistsError, match='nothing is overwritten'):
    export.write_folder(cl2, tmp_path / 'taken')
  assert not list(tmp_path.glob('*.incomplete-*'))
  with pytest.raises(ValueError, match='HEAD:CLASS'):
    export.parse_where(['action'])
  with pytest.raises(ValueError, match='KEY one of seed'):
    export.parse_options('synthcl2', ['bogus=1'])
  with pytest.raises(ValueError, match='takes a float'):
    export.parse_options('synthcl2', ['tempo_ratio=fast'])
  with pytest.raises(ValueError, match='only synthetic'):
    export.parse_options('cl2ad', ['frame_size=8'])


def test_parsed_options_are_typed():
  assert export.parse_where(['action:touch,sweep', 'ado:cup']) == {
    'action': ['touch', 'sweep'],
    'ado': ['cup'],
  }
  assert export.parse_options('synthcl2', ['tempo_ratio=1', 'count_timing=equal_total']) == {
    'tempo_ratio': 1.0,
    'count_timing': 'equal_total',
  }
