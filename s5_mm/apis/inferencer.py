"""``MMSegInferencer`` for s5_mm configs.

MMSeg's inferencer swaps the test pipeline's ``LoadImageFromFile`` for its
``InferencerLoader`` (mmcv's 8-bit decoding), reads the pipeline of
``test_dataloader.dataset`` and expects a dict ``dataset_meta`` in the
checkpoint. s5_mm configs load GeoTIFFs (``LoadGeoImageFromFile``), test on
an ``MDFConcatDataset`` (one pipeline per dataset) and multi-dataset
checkpoints store one metainfo per dataset; :class:`S5SegInferencer`
overrides only those steps.
"""
import copy
import os.path as osp
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmengine.config import Config, ConfigDict
from mmseg.apis import MMSegInferencer
from mmseg.datasets.transforms import LoadImageFromNDArray

from s5_mm.datasets.transforms.geo_loading import LoadGeoImageFromFile
from s5_mm.visualization.display import to_display_rgb

# removed for inference (MMSegInferencer removes the first three)
ANNOTATION_LOADERS = ('LoadAnnotations', 'LoadDepthAnnotation',
                      'LoadOneDLAnnotations', 'LoadGeoAnnotations')


class GeoInferencerLoader(BaseTransform):
    """``InferencerLoader`` of GeoTIFF pipelines: a path is read by
    ``LoadGeoImageFromFile(**kwargs)``, an HxWxC array is taken as loaded."""

    def __init__(self, **kwargs):
        self.from_file = LoadGeoImageFromFile(**kwargs)
        self.from_ndarray = LoadImageFromNDArray(
            to_float32=kwargs.get('to_float32', True))

    def transform(self, single_input):
        if isinstance(single_input, (str, Path)):
            return self.from_file(dict(img_path=str(single_input)))
        if isinstance(single_input, np.ndarray):
            return self.from_ndarray(dict(img=single_input))
        if isinstance(single_input, dict):
            load = self.from_ndarray if 'img' in single_input else \
                self.from_file
            return load(single_input)
        raise TypeError(f'{type(self).__name__}: expected a path, an array '
                        f'or a dict, got {type(single_input).__name__}')


def _model_dataset(model) -> Optional[str]:
    """The dataset a multi-dataset model predicts image-only inputs for."""
    names = getattr(model, 'dataset_names', None)
    if not names:
        return None
    default = (getattr(model, 'test_cfg', None) or {}).get('default_dataset')
    if default is None and len(names) > 1:
        raise KeyError(f'the model has heads {list(names)}: choose one with '
                       "cfg_options={'model.test_cfg.default_dataset': NAME}")
    return default or names[0]


class S5SegInferencer(MMSegInferencer):
    """``MMSegInferencer`` for GeoTIFF and multi-dataset configs.

    - pipeline: the test dataset's (of an ``MDFConcatDataset``: the part of
      the model's ``test_cfg.default_dataset``), annotation loaders removed,
      ``LoadGeoImageFromFile`` replaced by :class:`GeoInferencerLoader`
      (``LoadImageFromFile`` pipelines: MMSeg's own handling);
    - weights: a checkpoint's list of per-dataset metainfos gives the
      classes and palette of that dataset;
    - pictures (``show`` / ``out_dir``): drawn on a percentile-stretched
      composite of ``rgb_bands`` of the bands (default: the config's
      ``default_hooks.visualization.rgb_bands``, else bands 0, 1, 2) and
      named as MMSeg names array inputs (``00000000_vis.jpg``, ...).

    Args:
        cfg_options (dict, optional): merged into the config before the
            model is built, e.g. ``{'model.test_cfg.default_dataset':
            'lc3'}`` (the head and expert of a MoE-MDF model) or
            ``{'model.semi_test_cfg.predict_on': 'teacher'}`` (S4P's EMA
            teacher).
        rgb_bands (tuple[int], optional): see above.
        Other arguments as ``mmseg.apis.MMSegInferencer``.
    """

    def __init__(self,
                 model: Union[str, Config, ConfigDict, dict],
                 weights: Optional[str] = None,
                 classes=None,
                 palette=None,
                 dataset_name: Optional[str] = None,
                 device: Optional[str] = None,
                 scope: Optional[str] = 'mmseg',
                 show_progress: bool = True,
                 cfg_options: Optional[dict] = None,
                 rgb_bands=None):
        if isinstance(model, (str, Path)) and osp.isfile(model):
            model = Config.fromfile(str(model))
        elif isinstance(model, (Config, ConfigDict, dict)):
            model = copy.deepcopy(model)
            if isinstance(model, dict) and not isinstance(model, Config):
                model = Config(dict(model))
        if cfg_options:
            model.merge_from_dict(cfg_options)
        self._rgb_bands = rgb_bands
        self._geo = False
        super().__init__(model, weights=weights, classes=classes,
                         palette=palette, dataset_name=dataset_name,
                         device=device, scope=scope,
                         show_progress=show_progress)

    def _load_weights_to_model(self, model, checkpoint, cfg) -> None:
        meta = (checkpoint or {}).get('meta', {}).get('dataset_meta')
        if isinstance(meta, (list, tuple)):  # MDFConcatDataset's metainfo
            name = _model_dataset(model)
            by_name = {m.get('dataset_name'): m for m in meta}
            if name not in by_name:
                raise KeyError(f'checkpoint dataset_meta names datasets '
                               f'{list(by_name)}, not {name!r}')
            meta = dict(checkpoint['meta'], dataset_meta=by_name[name])
            checkpoint = dict(checkpoint, meta=meta)
        super()._load_weights_to_model(model, checkpoint, cfg)

    def _test_pipeline_cfg(self, cfg) -> List[dict]:
        dataset = cfg.test_dataloader.dataset
        if 'pipeline' in dataset:
            return dataset.pipeline
        parts = dataset.get('datasets')
        if parts:
            names = dataset.get('dataset_names') or [
                p.get('dataset_name') for p in parts]
            name = _model_dataset(self.model)
            if len(parts) == 1:
                return parts[0].pipeline
            if name in names:
                return parts[list(names).index(name)].pipeline
        if 'test_pipeline' in cfg:
            return cfg.test_pipeline
        raise KeyError('no test pipeline found: test_dataloader.dataset.'
                       'pipeline (or its datasets[i].pipeline) or '
                       'test_pipeline')

    def _init_pipeline(self, cfg) -> Compose:
        pipeline = [t for t in copy.deepcopy(self._test_pipeline_cfg(cfg))
                    if t['type'] not in ANNOTATION_LOADERS]
        types = [t['type'] for t in pipeline]
        if 'LoadGeoImageFromFile' not in types:  # 8-bit pictures
            return super()._init_pipeline(
                ConfigDict(test_dataloader=dict(dataset=dict(
                    pipeline=pipeline))))
        self._geo = True
        i = types.index('LoadGeoImageFromFile')
        kwargs = {k: v for k, v in pipeline[i].items() if k != 'type'}
        self._geo_reader = LoadGeoImageFromFile(**kwargs)
        if self._rgb_bands is None:
            vis = cfg.get('default_hooks', {}).get('visualization') or {}
            self._rgb_bands = tuple(vis.get('rgb_bands', (0, 1, 2)))
        pipeline[i] = GeoInferencerLoader(**kwargs)
        return Compose(pipeline)

    def visualize(self, inputs: list, preds, **kwargs):
        if self._geo:  # MMSeg's visualize draws on 8-bit RGB pictures
            inputs = [self._display(x) for x in inputs]
        return super().visualize(inputs, preds, **kwargs)

    def _display(self, single_input) -> np.ndarray:
        if isinstance(single_input, np.ndarray):  # raw bands
            return to_display_rgb(single_input, self._rgb_bands)
        results = self._geo_reader(dict(img_path=str(single_input)))
        return to_display_rgb(results['img'], self._rgb_bands,
                              results.get('valid_mask'))
