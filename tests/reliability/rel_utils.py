"""Helpers of the bad-input and fault tests: tiny land-cover-like tiles, a
tiny segmentor checkpoint, GeoTIFF writers and folder checksums."""
import hashlib
import os
import traceback
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / 'configs/demo/upernet_vit-tiny_landcover.py')
CRS = 'EPSG:32119'


def write_tif(path, data, nodata=None, transform=None, crs=CRS):
    """Write ``data`` (C, H, W) or (H, W) as a GeoTIFF."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, 'w', driver='GTiff', width=data.shape[2],
                       height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype.name, crs=crs, nodata=nodata,
                       transform=transform or from_origin(1000, 2000, 1, 1)
                       ) as dst:
        dst.write(data)
    return str(path)


def snapshot(folder):
    """{relative path: sha256} of every file under ``folder`` (hidden ones
    too, so leftover temporary files show)."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            p = os.path.join(root, name)
            with open(p, 'rb') as f:
                out[os.path.relpath(p, folder)] = hashlib.sha256(
                    f.read()).hexdigest()
    return out


def last_line(exc) -> str:
    """The last line Python prints for an uncaught ``exc``."""
    text = ''.join(traceback.format_exception_only(type(exc), exc))
    return text.strip().splitlines()[-1]


def make_tiles(root, n_train=4, n_val=2, size=32, seed=0, nan_block=False,
               label_value=None):
    """Land-cover-like tiles: 6 float32 bands (no nodata tag), labels 1..7
    (uint8), in the LandcoverNCDataset layout. ``nan_block``: NaN in the
    top-left 8x8 pixels of every band of every tile and +inf at one pixel;
    ``label_value``: put this raw label at one pixel of every label tile."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for split, n in (('train', n_train), ('val', n_val)):
        for i in range(n):
            t = from_origin(1000 + size * i, 2000 + size * (split == 'val'),
                            1, 1)
            img = rng.normal(70, 20, (6, size, size)).astype('float32')
            if nan_block:
                img[:, :8, :8] = np.nan
                img[2, size - 1, size - 1] = np.inf
            lab = rng.integers(1, 8, (size, size)).astype('uint8')
            if label_value is not None:
                lab[size // 2, size // 2] = label_value
            write_tif(root / 'img_dir' / split / f't{i}.tif', img,
                      transform=t)
            write_tif(root / 'ann_dir' / split / f't{i}.tif', lab,
                      transform=t)
    return root


def train_options(data_root, iters, interval=1, val=True):
    """--cfg-options of a short run of the demo config on ``data_root``;
    without ``val`` there is no validation at all."""
    if val:
        val_opts = [f'val_dataloader.dataset.data_root={data_root}',
                    'val_dataloader.batch_size=2']
    else:
        val_opts = ['val_dataloader=None', 'val_cfg=None',
                    'val_evaluator=None']
    opts = val_opts + [
        f'train_dataloader.dataset.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2',
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={interval}',
        'default_hooks.checkpoint.save_best=None',
        'default_hooks.checkpoint.max_keep_ckpts=-1',
        'default_hooks.logger.interval=1',
        'default_hooks.visualization.draw=False',
    ]
    return opts


# ----------------------------------------------------------- inference
def tiny_seg_config(in_channels=3, num_classes=3):
    norm = dict(type='BN', requires_grad=True)
    return dict(
        default_scope='mmseg',
        custom_imports=dict(imports=['s5_mm'], allow_failed_imports=False),
        model=dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='MultiBandSegDataPreProcessor',
                                   mean=[70.0] * in_channels,
                                   std=[20.0] * in_channels,
                                   bgr_to_rgb=False),
            backbone=dict(type='UNet', in_channels=in_channels,
                          base_channels=4, num_stages=2, strides=(1, 1),
                          enc_num_convs=(1, 1), dec_num_convs=(1, ),
                          downsamples=(False, ), enc_dilations=(1, 1),
                          dec_dilations=(1, ), norm_cfg=norm),
            decode_head=dict(type='FCNHead', in_channels=4, in_index=-1,
                             channels=4, num_convs=1, concat_input=False,
                             num_classes=num_classes, norm_cfg=norm,
                             loss_decode=dict(type='CrossEntropyLoss')),
            train_cfg=dict(), test_cfg=dict(mode='whole')),
        test_pipeline=[dict(type='LoadGeoImageFromFile'),
                       dict(type='PackSegInputs')])


def save_tiny_checkpoint(cfg, path, bare=False, seed=0):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import s5_mm  # noqa: F401
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    model = MODELS.build(cfg['model'])
    with torch.no_grad():  # BN statistics of a trained model, not 0/1
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    state = model.state_dict()
    n = cfg['model']['decode_head']['num_classes']
    meta = dict(dataset_meta=dict(classes=[f'c{i}' for i in range(n)],
                                  palette=[[60 * i, 0, 0] for i in range(n)]))
    torch.save(state if bare else dict(state_dict=state, meta=meta), path)
    return str(path)


def band_files(folder, size=(40, 56), seed=1, prefix='B'):
    """Three single-band float32 files of one scene; returns their paths."""
    rng = np.random.default_rng(seed)
    h, w = size
    return [write_tif(Path(folder) / f'{prefix}{b}.tif',
                      rng.normal(70, 20, (h, w)).astype('float32'))
            for b in (1, 2, 3)]
