"""configs: Sec. III.A spatial rules, Table I presets, derive_config."""

import dataclasses

import pytest

from mstrnn_jax import configs, evaluate, names, ops, scan


def test_cl1ad_mstrnn_spatial_chain_matches_paper():
  shapes = configs.layer_shapes(configs.get_model_config('mstrnn', 'cl1ad'))
  sizes = {name: shape[0] for name, shape in shapes.items() if len(shape) == 3}
  assert sizes == {
    'conv0': 36,
    'pool0': 18,
    'feature1': 16,
    'pool1': 8,
    'context1': 7,
    'feature2': 6,
    'pool2': 3,
    'context2': 2,
  }
  assert shapes['context1'][2] == 128 and shapes['context2'][2] == 256  # Fig. 3


def test_3acwd_uses_stride_2_and_reaches_the_same_maps():
  cfg = configs.get_model_config('mstrnn', 'weizmann_3acwd')
  assert (cfg.input_size, cfg.conv0_stride, cfg.heads) == (73, 2, (('action', 27),))
  assert configs.layer_shapes(cfg)['pool0'][0] == 18


def test_presets_heads_follow_table_i():
  assert configs.get_model_config('lrcn', 'cl1ad').heads == (('ado', 4), ('action', 9))
  assert configs.get_model_config('mstnn', 'cl2ad').heads == (
    ('ado', 4),
    ('action', 4),
    ('modifier', 6),
  )
  with pytest.raises(ValueError, match='unknown dataset'):
    configs.get_model_config('mstrnn', 'ucf101')
  with pytest.raises(ValueError, match='not a paper dataset'):
    configs.get_model_config('mstrnn', 'synth3a')
  assert configs.get_model_config('mstrnn', '3acwd') == configs.get_model_config(
    'mstrnn', 'weizmann_3acwd'
  )


def test_string_options_are_enums_validated_once():
  cfg = configs.get_model_config('mstrnn', 'cl1ad', conv_impl='gemm', time_layout='all_in_scan')
  assert cfg.conv_impl is names.ConvImpl.GEMM and cfg.time_layout == 'all_in_scan'
  assert {m.value for m in names.LeakyScan} == set(scan.LEAKY_SCANS)
  assert {m.value for m in names.ConvImpl} == {'auto', *ops.CONV_IMPLS}
  assert {m.value for m in names.VoteRule} == set(evaluate.VOTE_RULES)
  with pytest.raises(ValueError, match="conv_impl: 'fft' is not a ConvImpl"):
    configs.get_model_config('mstrnn', 'cl1ad', conv_impl='fft')


def test_baselines_spatial_chain():
  for model in ('mstnn', 'lrcn'):
    shapes = configs.layer_shapes(configs.get_model_config(model, 'cl1ad'))
    assert [shapes[n][0] for n in ('conv1', 'pool1', 'conv2', 'pool2')] == [16, 8, 6, 3]
  assert configs.fc_input_layers(configs.get_model_config('lrcn', 'cl1ad')) == ('pool2',)
  assert configs.fc_input_layers(configs.get_model_config('mstrnn', 'cl1ad')) == ('context2',)
  both = configs.get_model_config('mstrnn', 'cl1ad', fc_input='contexts')
  assert configs.fc_input_layers(both) == ('context1', 'context2')
  pool = configs.get_model_config('mstrnn', 'cl1ad', fc_input='pool')
  assert configs.fc_input_layers(pool) == ('pool2',)
  for model in ('lrcn', 'mstnn'):  # the baselines read their last pool whatever is asked
    cfg = configs.get_model_config(model, 'cl1ad', fc_input='contexts')
    assert cfg.fc_input == 'top' and configs.fc_input_layers(cfg) == ('pool2',)
  with pytest.raises(ValueError, match="'all' is not a FcInput"):
    configs.get_model_config('mstrnn', 'cl1ad', fc_input='all')


def test_derive_config_small_frames():
  cfg = configs.derive_config('mstrnn', 32, (('action', 5),), bn_steps=24, width_scale=0.25)
  assert cfg.conv0_stride == 1
  sizes = [s[0] for s in configs.layer_shapes(cfg).values() if len(s) == 3]
  assert sizes == [30, 15, 13, 6, 5, 4, 2, 1]
  assert cfg.conv0_width == 8 and cfg.context_widths == (32, 64) and cfg.fc_widths == (256, 208)
  assert configs.default_conv0_stride(108) == 3 and configs.default_conv0_stride(73) == 2


def test_third_context_layer_is_configurable():
  cfg = configs.derive_config(
    'mstrnn',
    62,
    (('a', 2), ('b', 3)),
    bn_steps=10,
    conv0_stride=1,
    feature_widths=(4, 4, 4),
    context_widths=(4, 4, 4),
    taus=(2.0, 10.0, 100.0),
  )
  assert configs.layer_shapes(cfg)['context3'] == (1, 1, 4)
  with pytest.raises(ValueError, match=r'context3 0'):
    dataclasses.replace(cfg, input_size=60)


def test_vanishing_map_error_names_the_sizes():
  with pytest.raises(ValueError, match=r'24 -> conv0 22 .*context2 0'):
    configs.derive_config('mstrnn', 24, (('a', 2),), bn_steps=4, conv0_stride=1)
  with pytest.raises(ValueError, match='no conv0 stride'):
    configs.derive_config('mstrnn', 12, (('a', 2),), bn_steps=4)


def test_invalid_fields_raise():
  base = configs.derive_config('mstrnn', 32, (('a', 2),), bn_steps=4)
  for bad in (
    dict(taus=(2.0,)),
    dict(context_widths=(3,)),
    dict(time_layout='unrolled'),
    dict(leaky_scan='fft'),
    dict(conv_impl='winograd'),
    dict(bn_steps=0),
    dict(heads=()),
  ):
    with pytest.raises(ValueError):
      dataclasses.replace(base, **bad)
  with pytest.raises(ValueError, match='lstm'):
    configs.derive_config('lrcn', 32, (('a', 2),), bn_steps=4, lstm_widths=())
  assert configs.derive_config('lrcn', 32, (('a', 2),), bn_steps=4).taus == ()
  hash(base)  # usable as a jit static argument
