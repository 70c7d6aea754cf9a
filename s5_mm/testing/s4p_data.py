"""Tiny data for the full S4P configs (configs/s4p/*) in tests."""
from typing import Sequence


def write_tiny_s4p_data(root, rng, pool_heights: Sequence[int] = (40, ) * 5):
    """Under ``root``: an iSAID release of 64 px patches (3 train, 1 val; a
    class-1..15 quadrant and a class-15 quadrant each) and an unlabelled
    pool of ``len(pool_heights)`` 48 px wide images with its
    ``selected.txt``. Returns (iSAID root, pool root)."""
    import cv2
    import numpy as np
    isaid = root / 'iSAID'
    for split, n in (('train', 3), ('val', 1)):
        for d in ('img_dir', 'ann_dir'):
            (isaid / d / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            label = np.zeros((64, 64), np.uint8)
            label[:32, :32] = 1 + i % 15
            label[32:, 32:] = 15
            img = label[..., None] * 8 + rng.integers(0, 50, (64, 64, 3))
            cv2.imwrite(str(isaid / 'img_dir' / split / f'P{i:04d}.png'),
                        img.astype(np.uint8))
            cv2.imwrite(str(isaid / 'ann_dir' / split /
                            f'P{i:04d}_instance_color_RGB.png'), label)
    pool = root / 'pool'
    pool.mkdir()
    for i, h in enumerate(pool_heights):
        cv2.imwrite(str(pool / f'u{i}.jpg'),
                    rng.integers(0, 255, (h, 48, 3)).astype(np.uint8))
    (pool / 'selected.txt').write_text(''.join(
        f'u{i}.jpg {0.1 * i:.2f}\n' for i in range(len(pool_heights))))
    return isaid, pool


def use_tiny_s4p_data(cfg, isaid, pool, crop: int = 32) -> None:
    """Points an S4P config's loaders at a tiny iSAID release (64 px
    patches, cropped to ``crop``) and an unlabelled pool with its
    ``selected.txt``: 2 + 2 images per batch, 2 per validation batch, no
    workers; the test loader is the validation loader."""
    dl = cfg.train_dataloader
    dl.update(batch_size=4, num_workers=0, persistent_workers=False)
    dl.sampler.update(batch_size=4, source_ratio=[2, 2])
    lab, unl = dl.dataset.dataset.datasets  # inside SeededDataset
    lab.update(data_root=str(isaid), patch_size=64, crop_size=crop)
    unl.update(data_root=str(pool), ann_file='selected.txt')
    for ds in (lab, unl):
        for t in ds.pipeline:
            if t.type == 'RandomCrop':
                t.crop_size = (crop, crop)
    cfg.val_dataloader.update(num_workers=0, persistent_workers=False,
                              batch_size=2)
    cfg.val_dataloader.dataset.update(data_root=str(isaid), patch_size=64,
                                      crop_size=crop)
    cfg.test_dataloader = cfg.val_dataloader
