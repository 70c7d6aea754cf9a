"""Per-image predictions of a config's test set, through the model's own
test path (``test_step``: its data preprocessor and ``test_cfg``, flip
averaging or sliding windows included), for per-tile statistics such as
paired bootstrap intervals."""
from typing import Dict, List, Optional

import numpy as np
import torch


def predict_dataset(cfg, checkpoint: Optional[str] = None,
                    model=None, dataloader: str = 'test_dataloader'
                    ) -> List[Dict[str, object]]:
    """``[dict(img_path, dataset_name, pred, label)]`` in loader order.

    ``cfg``: an mmengine Config (its ``dataloader`` is built as the runner
    builds it); the model is built from ``cfg.model`` and ``checkpoint``
    unless ``model`` is given. ``pred`` / ``label`` are (H, W) int64 maps
    at the label's size; ``dataset_name`` is None for single-dataset
    models.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmseg.registry import MODELS

    from s5_mm.utils.checkpoint import load_checked
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if model is None:
        model = MODELS.build(cfg.model)
        if checkpoint is not None:
            load_checked(model, checkpoint)
    model.eval()
    loader_cfg = cfg[dataloader].copy()
    loader_cfg['num_workers'] = 0
    loader_cfg.pop('persistent_workers', None)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    out = []
    with torch.no_grad():
        for batch in loader:
            for sample in model.test_step(batch):
                out.append(dict(
                    img_path=sample.metainfo.get('img_path'),
                    dataset_name=sample.metainfo.get('dataset_name'),
                    pred=sample.pred_sem_seg.data[0].cpu().numpy().astype(
                        np.int64),
                    label=sample.gt_sem_seg.data[0].cpu().numpy().astype(
                        np.int64)))
    return out
