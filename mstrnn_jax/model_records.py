"""Model records: the JSON form of a model config in ``workdir/experiment.json``.

A record holds what ``configs.derive_config`` needs (model, input size, heads, BN steps,
conv0 stride, width scale, overrides), so a workdir rebuilds its models without the dataset.
"""

from __future__ import annotations

from mstrnn_jax import configs, names


def conv0_stride(dataset: str, input_size: int) -> int | None:
  """Table I's stride when the frames have Table I's size; None (derived) otherwise."""
  spec = names.TABLE_I.get(dataset)
  return spec['conv0_stride'] if spec and spec['input_size'] == input_size else None


def model_record(
  model: str,
  dataset: str,
  input_size: int,
  heads,
  bn_steps: int,
  width_scale: float,
  overrides: dict,
) -> dict:
  """JSON-able description from which :func:`model_config_from_record` rebuilds the config."""
  if model not in names.MODELS:
    raise ValueError(f'unknown model {model!r}; use one of {", ".join(names.MODELS)} (or all).')
  overrides = dict(overrides)
  stride = overrides.pop('conv0_stride', None) or conv0_stride(dataset, input_size)
  return {
    'model': model,
    'input_size': int(input_size),
    'heads': [[h, int(k)] for h, k in heads],
    'bn_steps': int(bn_steps),
    'width_scale': float(width_scale),
    'conv0_stride': stride,
    'overrides': {k: (v.value if hasattr(v, 'value') else v) for k, v in overrides.items()},
  }


def model_config_from_record(record: dict) -> configs.ModelConfig:
  """``configs.ModelConfig`` from a :func:`model_record`."""
  overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in record['overrides'].items()}
  return configs.derive_config(
    record['model'],
    record['input_size'],
    tuple((h, k) for h, k in record['heads']),
    record['bn_steps'],
    conv0_stride=record['conv0_stride'],
    width_scale=record['width_scale'],
    **overrides,
  )
