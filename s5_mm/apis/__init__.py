"""High-level APIs that drive a model (as ``mmrotate.apis``)."""
from .inference import (SceneInferenceOptions, infer_scene, predict_scene,
                        window_logits)
from .inferencer import GeoInferencerLoader, S5SegInferencer

__all__ = [
    'GeoInferencerLoader', 'S5SegInferencer', 'SceneInferenceOptions',
    'infer_scene', 'predict_scene', 'window_logits'
]
