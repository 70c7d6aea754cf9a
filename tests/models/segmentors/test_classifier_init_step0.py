"""Step 0 of fine-tuning from a trained 7-class land-cover checkpoint, on
real tiles: the kept lc7 head predicts the checkpoint's classes and the
merged lc3 head its merged probabilities (issue 20, item 1)."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

import s5_mm  # noqa: F401
from s5_mm.registry import MODELS
from s5_mm.testing.landcover_model import trained_model

DEFAULT_SCOPE = 'mmseg'
MDF_CFG = 'configs/demo/mdf_vit-tiny_landcover.py'
GROUPS = [[0, 6], [1, 2, 3, 4], [5]]  # lc3 from the 7 classes


@pytest.fixture(scope='module')
def checkpoint_and_tiles(tmp_path_factory, shared_data):
    data_root, cfg_path, ckpt = trained_model(tmp_path_factory, shared_data)
    tiles = sorted((data_root / 'img_dir' / 'val').glob('*.tif'))
    return cfg_path, ckpt, tiles


def _inputs(model, tiles):
    from mmcv.transforms import Compose
    from mmseg.structures import SegDataSample  # noqa: F401
    pipe = Compose([dict(type='LoadGeoImageFromFile', expected_bands=6),
                    dict(type='PackSegInputs')])
    batch = [pipe(dict(img_path=str(t))) for t in tiles]
    data = model.data_preprocessor(dict(
        inputs=[b['inputs'] for b in batch],
        data_samples=[b['data_samples'] for b in batch]), False)
    return data['inputs'], data['data_samples']


def _build(cfg_file, repo_root, **model_overrides):
    cfg = Config.fromfile(str(repo_root / cfg_file))
    for k, v in model_overrides.items():
        cfg.model[k] = v  # replace, not merge
    model = MODELS.build(cfg.model)
    return model


def test_kept_and_merged_heads_at_step_0(checkpoint_and_tiles, repo_root):
    cfg_path, ckpt, tiles = checkpoint_and_tiles
    src = MODELS.build(Config.fromfile(str(cfg_path)).model)
    load_checkpoint(src, str(ckpt), map_location='cpu', strict=True)
    src.eval()
    inputs, samples = _inputs(src, tiles)
    with torch.no_grad():
        ref = src.encode_decode(inputs, [s.metainfo for s in samples])
    p_ref = ref.softmax(1)

    mdf = _build(MDF_CFG, repo_root)
    assert {n: p['rule'] for n, p in mdf.classifier_plan.items()} == dict(
        lc7='keep', lc3='merge')
    load_checkpoint(mdf, str(ckpt), map_location='cpu', strict=False)
    mdf.eval()
    out = {}
    for name in ('lc7', 'lc3'):
        metas = [dict(s.metainfo, dataset_name=name) for s in samples]
        with torch.no_grad():
            feats = mdf.extract_feat(inputs, [name] * len(metas))
            out[name] = mdf.decode_head[name].predict(
                feats, metas, mdf.test_cfg)
    torch.testing.assert_close(out['lc7'], ref, atol=1e-4, rtol=1e-4)
    merged_ref = torch.stack([p_ref[:, g].sum(1) for g in GROUPS], 1)
    torch.testing.assert_close(out['lc3'].softmax(1), merged_ref, atol=1e-5,
                               rtol=1e-4)
    # argmax on decided pixels (top-2 gap above float noise)
    for got, want in ((out['lc7'], ref.softmax(1)),
                      (out['lc3'].softmax(1), merged_ref)):
        top2 = want.topk(2, dim=1).values
        decided = (top2[:, 0] - top2[:, 1]) > 1e-3
        assert decided.float().mean() > 0.5
        assert torch.equal(got.argmax(1)[decided], want.argmax(1)[decided])


def test_without_classifier_init_the_heads_are_new(checkpoint_and_tiles,
                                                   repo_root):
    cfg_path, ckpt, _ = checkpoint_and_tiles
    mdf = _build(MDF_CFG, repo_root, classifier_init=None)
    before = {n: mdf.decode_head[n].conv_seg.weight.clone()
              for n in ('lc7', 'lc3')}
    load_checkpoint(mdf, str(ckpt), map_location='cpu', strict=False)
    state = torch.load(str(ckpt), map_location='cpu', weights_only=False)
    w = state['state_dict']['decode_head.conv_seg.weight']
    for n in ('lc7', 'lc3'):
        assert torch.equal(mdf.decode_head[n].conv_seg.weight, before[n])
    assert not torch.allclose(mdf.decode_head['lc7'].conv_seg.weight, w)


def test_class_count_mismatches_are_refused(checkpoint_and_tiles,
                                            repo_root):
    _, ckpt, _ = checkpoint_and_tiles
    six = ('a', 'b', 'c', 'd', 'e', 'f')
    with pytest.raises(ValueError, match="decode_head 'lc7' has 7"):
        _build(MDF_CFG, repo_root, classifier_init=dict(
            checkpoint_classes=six, dataset_classes=dict(lc7=six)))
    # the config says the checkpoint predicts lc3's 3 classes; it has 7
    lc3 = ('non-vegetation', 'vegetation', 'water')
    mdf = _build(MDF_CFG, repo_root, classifier_init=dict(
        checkpoint_classes=lc3, dataset_classes=dict(lc3=lc3)))
    with pytest.raises(ValueError, match='checkpoint_classes names 3'):
        load_checkpoint(mdf, str(ckpt), map_location='cpu', strict=False)
