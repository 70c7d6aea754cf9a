"""Landsat-7 land-cover scene over Raleigh NC (GRASS NC sample data).

Six single-band GeoTIFFs (ETM+ bands 1-5 and 7) and a 7-class land-cover
raster on the same grid; ``tools/dataset_converters/prepare_landcover.py``
cuts them into georeferenced tiles that this dataset reads.
"""
import os.path as osp

from mmseg.datasets import BaseSegDataset

from s5_mm.datasets.transforms.geo_loading import set_label_range
from s5_mm.registry import DATASETS

# Legend of GRASS's NC 'landclass96' raster, which strata.tif encodes as 1..7
# (the loader shifts labels to 0..6).
LANDCOVER_CLASSES = ('developed', 'agriculture', 'herbaceous', 'shrubland',
                     'forest', 'water', 'sediment')
LANDCOVER_PALETTE = [[230, 25, 75], [255, 225, 25], [170, 255, 195],
                     [128, 128, 0], [60, 180, 75], [0, 130, 200],
                     [170, 110, 40]]
# Band files in ETM+ band order; the tiler stacks them into one 6-band tile.
LANDCOVER_BANDS = ('lsat7_2000_10.tif', 'lsat7_2000_20.tif',
                   'lsat7_2000_30.tif', 'lsat7_2000_40.tif',
                   'lsat7_2000_50.tif', 'lsat7_2000_70.tif')
LANDCOVER_LABELS = 'strata.tif'


@DATASETS.register_module()
class LandcoverNCDataset(BaseSegDataset):
    """6-band GeoTIFF tiles in ``img_dir`` and label tiles of the same name in
    ``ann_dir``; labels 1..7 on disk, shifted to 0..6 by
    ``LoadGeoAnnotations(label_offset=-1)`` in the pipeline. Labels beyond
    the 7 classes raise naming the tile (``check_labels``; the loader's
    ``out_of_range='ignore'`` maps them to ignore instead)."""

    METAINFO = dict(classes=LANDCOVER_CLASSES, palette=LANDCOVER_PALETTE)

    def __init__(self, img_suffix='.tif', seg_map_suffix='.tif',
                 check_labels=True, **kwargs):
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
        if check_labels:
            set_label_range(self.pipeline, len(self.metainfo['classes']),
                            self.ignore_index)

    def load_data_list(self):
        # a missing or empty folder fails naming it (mmengine's own error on
        # an empty list is "need at least one array to concatenate")
        img_dir = self.data_prefix.get('img_path', '') or ''
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'{type(self).__name__}: image folder not found '
                '(tools/dataset_converters/prepare_landcover.py makes it): '
                f'{osp.abspath(img_dir)}')
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(f'{type(self).__name__}: no *{self.img_suffix} '
                             f'tiles in {osp.abspath(img_dir)}')
        return data_list
