"""Tiny data overrides for the full S4P configs (configs/s4p/*) in tests."""


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
