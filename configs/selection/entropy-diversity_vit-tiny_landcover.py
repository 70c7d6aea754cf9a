# Data selection (S5 stage 1) with the land-cover demo model: score the
# unlabelled tiles, keep the lowest-entropy ones under per-cluster quotas.
# Model, loader and input size come from the supervised demo config; the
# `selection` dict holds tools/select_data.py's defaults (its options win).
_base_ = ['../demo/s4p-supervised_vit-tiny_landcover.py']

selection = dict(
    pool='data/landcover_nc/splits/tiles/unlabelled.txt',
    pool_root='data/landcover_nc/img_dir/train',
    labeled='data/landcover_nc/splits/tiles/labelled.txt',
    labeled_root='data/landcover_nc/img_dir/train',
    list_suffix='.tif',  # the labelled list holds base names
    out='work_dirs/selection_landcover',
    budget=44,  # half of the 89 unlabelled tiles
    clusters=4,  # 10 labelled tiles: M must not exceed them
    # land cover has no background class: entropy over all 7 classes
    all_classes=True,
    feature_level=-1,  # last backbone block, global-average pooled
    input_size=(32, 32),
    mode='resize',
    batch_size=64,
    chunk_size=256,
    num_workers=0,
    ood_floor=None,  # e.g. 'p1': 1st percentile of labelled similarity
    redistribute=False,
    kmeans_backend='faiss',
    seed=0)
