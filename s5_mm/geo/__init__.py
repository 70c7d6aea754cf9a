"""Geospatial input/output: band stacks, tiling, tiled scene inference.

- :class:`~s5_mm.geo.raster_stack.RasterStack`: one raster or one file per
  band, checked to share a grid (CRS policy in that module), read by window.
- :func:`~s5_mm.geo.tiling.tile_raster`: scene -> georeferenced GeoTIFF tiles.
- :func:`~s5_mm.geo.inference.infer_scene`: window-by-window prediction of a
  scene into a class-map GeoTIFF (plus confidence/entropy, quick-look).
- :func:`~s5_mm.geo.stats.compute_band_stats`: per-band mean/std for the
  data preprocessor (``tools/band_stats.py``).
- The loading transforms are ``LoadGeoImageFromFile`` and
  ``LoadGeoAnnotations`` in ``s5_mm/datasets/transforms/geo_loading.py``.

Using a 3-band (RGB) checkpoint with N bands: set the backbone's
``in_channels=N`` and a ``MultiBandSegDataPreProcessor`` with N-entry
``mean``/``std`` (``tools/band_stats.py``) and ``bgr_to_rgb=False``; then
replace the first conv / patch-embedding kernel (``(embed_dim, 3, p, p)``;
``backbone.patch_embed.proj.weight`` in S5ViT) before loading::

    ckpt = torch.load(path, map_location='cpu')
    sd = ckpt.get('state_dict', ckpt)
    sd = adapt_state_dict_channels(sd, 'backbone.patch_embed.proj.weight', N)

By default band i reuses RGB kernel ``i % 3`` scaled by 3/N (one band: their
sum), keeping the activation scale; ``band_to_rgb=[2, 1, 0, None, ...]``
copies the kernels of the sensor's red/green/blue bands and starts the other
bands at zero.
"""
from . import channels, inference, raster_stack, stats, tiling, windows  # noqa: F401
from .channels import adapt_patch_embed_channels, adapt_state_dict_channels
from .inference import infer_scene, window_logits, write_quicklook
from .raster_stack import RasterStack, same_grid_crs
from .stats import compute_band_stats
from .tiling import Tile, tile_raster
from .windows import center_bounds, sliding_windows, window_offsets

__all__ = [
    'RasterStack', 'same_grid_crs', 'Tile', 'tile_raster', 'infer_scene',
    'window_logits', 'write_quicklook', 'compute_band_stats',
    'adapt_patch_embed_channels', 'adapt_state_dict_channels',
    'center_bounds', 'sliding_windows', 'window_offsets'
]
