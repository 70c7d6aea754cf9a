"""High-level APIs that drive a model (as ``mmrotate.apis``)."""
from .inference import (SceneInferenceOptions, infer_scene, predict_scene,
                        window_logits)

__all__ = [
    'SceneInferenceOptions', 'infer_scene', 'predict_scene', 'window_logits'
]
