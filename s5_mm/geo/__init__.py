"""Geospatial input/output (rasterio only; no model here).

- :class:`~s5_mm.geo.raster_stack.RasterStack`: one raster or one file per
  band, checked to share a grid (CRS policy in that module), read by window.
- :func:`~s5_mm.geo.tiling.tile_raster`: scene -> georeferenced GeoTIFF tiles.
- :mod:`~s5_mm.geo.windows`: the slide-inference window grid.
- :mod:`~s5_mm.geo.scene_writer`: merging window logits into class-map,
  confidence and entropy GeoTIFFs with bounded memory; quick-look PNGs.
- :func:`~s5_mm.geo.stats.compute_band_stats`: per-band mean/std for the
  data preprocessor (``tools/band_stats.py``).

Elsewhere: the model-driven scene loop is
:func:`s5_mm.apis.inference.infer_scene`; the loading transforms are
``LoadGeoImageFromFile`` and ``LoadGeoAnnotations`` in
``s5_mm/datasets/transforms/geo_loading.py``; adapting a 3-band checkpoint
to N bands is :mod:`s5_mm.models.utils.channels`.
"""
from . import raster_stack, scene_writer, stats, tiling, windows  # noqa: F401
from .raster_stack import RasterStack, same_grid_crs
from .scene_writer import (CLASS_NODATA, SceneOutputs, WindowGrid,
                           default_palette, write_quicklook)
from .stats import compute_band_stats
from .tiling import Tile, tile_raster
from .windows import center_bounds, sliding_windows, window_offsets

__all__ = [
    'RasterStack', 'same_grid_crs', 'Tile', 'tile_raster', 'CLASS_NODATA',
    'SceneOutputs', 'WindowGrid', 'default_palette', 'write_quicklook',
    'compute_band_stats', 'center_bounds', 'sliding_windows',
    'window_offsets'
]
