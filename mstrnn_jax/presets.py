"""Kept for ``checkpoint.load_run``: model records now live in :mod:`mstrnn_jax.model_records`
and the experiment presets in :mod:`mstrnn_jax.experiment_configs`."""
from mstrnn_jax.model_records import model_config_from_record  # noqa: F401
