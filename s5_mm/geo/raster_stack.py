"""A scene as a band stack: one multi-band raster or one file per band.

Every reader in s5_mm.geo (loader, tiler, tiled inference, band statistics)
goes through :class:`RasterStack`, so grid checks, band selection, dtype
promotion and nodata handling behave the same everywhere.

Grid policy for multi-file stacks: all files must have the same width, height
and geotransform (within 1e-6 of a pixel). Their CRS must be equal, or differ
only in the datum realisation (``datum``/``ellps``/``towgs84``/``nadgrids``
of the PROJ definition) with every projection parameter and the unit equal,
e.g. EPSG:32119 (NAD83) and EPSG:3358 (NAD83(HARN)), both NC State Plane in
metres: such tags describe the same pixel grid to well under a pixel. The
first file's CRS is then used and a UserWarning is issued. Anything else
raises.

Non-finite values (NaN, +-inf) of float bands are nodata wherever they occur,
whether or not the file declares a nodata value: archive imagery often has
NaN borders. Errors name the absolute path of the offending file.
"""
from __future__ import annotations

import os
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.windows import Window

PathLike = Union[str, os.PathLike]
# PROJ keys that only name the datum realisation, not the map projection.
_DATUM_KEYS = {'datum', 'ellps', 'towgs84', 'nadgrids', 'no_defs', 'type'}


def same_grid_crs(crs_a: Optional[CRS], crs_b: Optional[CRS]) -> bool:
    """Whether two CRS tags describe the same projected pixel grid.

    True when equal, or when only the datum realisation differs (see the
    module docstring); False otherwise (also when exactly one is missing).
    """
    if crs_a is None or crs_b is None:
        return crs_a is None and crs_b is None
    if crs_a == crs_b:
        return True
    try:
        da, db = crs_a.to_dict(), crs_b.to_dict()
    except Exception:  # a CRS PROJ cannot express as a dict
        return False
    if not da or not db:
        return False
    def strip(d):
        return {k: v for k, v in d.items() if k not in _DATUM_KEYS}

    return strip(da) == strip(db)


def _same_transform(ta, tb, tol_px: float = 1e-6) -> bool:
    res = max(abs(ta.a), abs(ta.e), abs(ta.b), abs(ta.d), 1e-300)
    return all(abs(x - y) <= tol_px * res for x, y in zip(ta[:6], tb[:6]))


def _as_paths(src) -> list:
    if isinstance(src, (str, os.PathLike)):
        return [os.fspath(src)]
    paths = [os.fspath(p) for p in src]
    if not paths:
        raise ValueError('empty list of band files')
    return paths


def _abs(path) -> str:
    return os.path.abspath(os.fspath(path))


def check_same_grid(ref_path, ref, path, ds, what: str = 'band stack'
                    ) -> None:
    """Raise unless open datasets ``ds`` and ``ref`` share size, geotransform
    and CRS (see :func:`same_grid_crs`); messages name both files. Warns
    when only the datum realisation of the CRS tags differs."""
    if (ds.width, ds.height) != (ref.width, ref.height):
        raise ValueError(
            f'size mismatch in {what}: {_abs(path)} is {ds.width}x'
            f'{ds.height}, {_abs(ref_path)} is {ref.width}x{ref.height}')
    if not _same_transform(ds.transform, ref.transform):
        raise ValueError(f'geotransform mismatch in {what}: {_abs(path)} '
                         f'{tuple(ds.transform)[:6]} vs {_abs(ref_path)} '
                         f'{tuple(ref.transform)[:6]}')
    if not same_grid_crs(ds.crs, ref.crs):
        raise ValueError(f'CRS mismatch in {what}: {_abs(path)} ({ds.crs}) '
                         f'vs {_abs(ref_path)} ({ref.crs})')
    if ds.crs != ref.crs:
        warnings.warn(f'{_abs(path)} is tagged {ds.crs}, {_abs(ref_path)} '
                      f'{ref.crs}: same projection, datum realisation '
                      f'differs; using {ref.crs}')


def _nodata_fits(value: float, dtype: np.dtype) -> bool:
    if value is None:
        return True
    if np.isnan(value):
        return np.issubdtype(dtype, np.floating)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return float(value).is_integer() and info.min <= value <= info.max
    return bool(np.asarray(value, dtype=dtype) == value)


class RasterStack:
    """Window reader over a band stack.

    Args:
        src: a path (one raster, all or ``bands`` of its bands) or a list of
            paths (one single-band file per band, stacked in that order).
        bands: 1-based band indexes to select and order; only for a single
            multi-band file.
        nodata: overrides the files' nodata value (one value for all bands).

    Attributes: ``width``, ``height``, ``count`` (selected bands), ``crs``,
    ``transform``, ``dtype`` (common dtype of the selected bands),
    ``band_nodata`` (per selected band, None where undefined) and ``nodata``
    (one value for written stacks: the first band's nodata, see
    :meth:`read`).
    """

    def __init__(self, src: Union[PathLike, Sequence[PathLike]],
                 bands: Optional[Sequence[int]] = None,
                 nodata: Optional[float] = None):
        self.paths = _as_paths(src)
        self._datasets = []
        try:
            for p in self.paths:
                if not os.path.isfile(p):
                    raise FileNotFoundError(
                        f'raster file not found: {_abs(p)}')
                if os.path.getsize(p) == 0:
                    raise OSError(f'cannot read raster {_abs(p)}: the file '
                                  'is empty (0 bytes)')
                try:
                    self._datasets.append(rasterio.open(p))
                except rasterio.errors.RasterioIOError as e:
                    raise OSError(
                        f'{e}; cannot read raster {_abs(p)}') from e
            self._setup(bands, nodata)
        except Exception:
            self.close()
            raise

    def _setup(self, bands, nodata):
        first = self._datasets[0]
        if len(self._datasets) > 1:
            if bands is not None:
                raise ValueError(
                    '`bands` selects bands of one multi-band file; with one '
                    'file per band, list the files in the wanted order '
                    f'instead: {self.paths}')
            for p, ds in zip(self.paths, self._datasets):
                if ds.count != 1:
                    raise ValueError(f'{_abs(p)} has {ds.count} bands; a band '
                                     'stack needs one single-band file per '
                                     'band')
            self._check_grid()
            self._band_src = [(ds, 1) for ds in self._datasets]
        else:
            if bands is None:
                bands = list(range(1, first.count + 1))
            bands = [int(b) for b in bands]
            bad = [b for b in bands if not 1 <= b <= first.count]
            if bad:
                raise ValueError(f'band indexes {bad} out of range 1..'
                                 f'{first.count} for {_abs(self.paths[0])}')
            self._band_src = [(first, b) for b in bands]
        self.width, self.height = first.width, first.height
        self.count = len(self._band_src)
        self.crs = first.crs
        self.transform = first.transform
        dtypes = [np.dtype(ds.dtypes[b - 1]) for ds, b in self._band_src]
        self.dtype = np.result_type(*dtypes)
        if nodata is not None:
            self.band_nodata = tuple(float(nodata) for _ in self._band_src)
        else:
            self.band_nodata = tuple(ds.nodatavals[b - 1]
                                     for ds, b in self._band_src)
        self.nodata = next((v for v in self.band_nodata if v is not None),
                           None)
        if not _nodata_fits(self.nodata, self.dtype):
            raise ValueError(f'nodata {self.nodata} does not fit the common '
                             f'dtype {self.dtype} of {self.abs_paths}')

    @property
    def abs_paths(self) -> list:
        return [_abs(p) for p in self.paths]

    def _check_grid(self):
        ref_p, ref = self.paths[0], self._datasets[0]
        for p, ds in zip(self.paths[1:], self._datasets[1:]):
            check_same_grid(ref_p, ref, p, ds)

    def check_same_grid_as(self, other: 'RasterStack',
                           what: str = 'image and label rasters') -> None:
        """Raise unless ``other`` lies on this stack's pixel grid."""
        check_same_grid(self.paths[0], self._datasets[0], other.paths[0],
                        other._datasets[0], what)

    def probe(self) -> None:
        """Read the last row of every selected band, so that a truncated
        file (its tail is what goes missing) fails before any output is
        written; costs one row of blocks."""
        self.read(Window(0, self.height - 1, self.width, 1))

    # reading -----------------------------------------------------------
    def full_window(self) -> Window:
        return Window(0, 0, self.width, self.height)

    def read(self, window: Optional[Window] = None, boundless: bool = False,
             dtype=None):
        """Read ``window`` of all selected bands.

        Returns ``(data, invalid)``: ``data`` is ``(C, h, w)`` in ``dtype``
        (default: the common dtype) with every band's own nodata replaced by
        :attr:`nodata` (so a stack of files with different nodata values can
        be written as one raster); ``invalid`` is a ``(C, h, w)`` bool array,
        True where a band is nodata (its nodata value, or non-finite) or
        (``boundless``) outside the raster. Outside pixels hold
        :attr:`nodata`, or 0 when there is none; non-finite pixels hold
        :attr:`nodata`, or NaN when there is none (float ``dtype``).
        """
        window = window or self.full_window()
        dtype = np.dtype(dtype or self.dtype)
        h, w = int(window.height), int(window.width)
        data = np.empty((self.count, h, w), dtype=dtype)
        invalid = np.zeros((self.count, h, w), dtype=bool)
        fill = self.nodata if self.nodata is not None else 0
        # Clip to the raster and paste: boundless reads through GDAL's VRT
        # path are slower and resample nothing we need.
        if boundless:
            data[...] = fill
            invalid[...] = True
            try:
                inner = window.intersection(self.full_window())
            except rasterio.errors.WindowError:  # entirely outside
                return data, invalid
        else:
            inner = window
        r0 = int(inner.row_off - window.row_off)
        c0 = int(inner.col_off - window.col_off)
        ih, iw = int(inner.height), int(inner.width)
        arrays = self._read_bands(inner)
        # non-finite pixels of a stack without nodata stay NaN in float
        # output, so tiles written from it keep them marked
        nan_fill = (self.nodata is None and dtype.kind == 'f')
        for i, band in enumerate(arrays):
            bad = self._nodata_mask(band, self.band_nodata[i])
            out = data[i, r0:r0 + ih, c0:c0 + iw]
            out[...] = band
            if bad is not None:
                out[bad] = np.nan if nan_fill else fill
                invalid[i, r0:r0 + ih, c0:c0 + iw] = bad
            else:
                invalid[i, r0:r0 + ih, c0:c0 + iw] = False
        return data, invalid

    def _read_bands(self, window: Window) -> list:
        if len(self._datasets) == 1:  # one call decodes each block once
            calls = [(self.paths[0], self._datasets[0],
                      [b for _, b in self._band_src])]
        else:
            calls = [(p, ds, b) for p, (ds, b) in zip(self.paths,
                                                      self._band_src)]
        arrays = []
        for path, ds, bands in calls:
            try:
                got = ds.read(bands, window=window)
            except rasterio.errors.RasterioError as e:
                # GDAL's own message names no file ("Read failed")
                raise OSError(
                    f'{e} (rows {int(window.row_off)}..'
                    f'{int(window.row_off + window.height)}); cannot read '
                    f'raster {_abs(path)}: truncated or corrupt?') from e
            arrays.extend(got if isinstance(bands, list) else [got])
        return arrays

    @staticmethod
    def _nodata_mask(band, nodata):
        """Pixels that are nodata: the nodata value and, for float bands,
        every non-finite value."""
        bad = None
        if band.dtype.kind == 'f':
            bad = ~np.isfinite(band)
        if nodata is None or np.isnan(nodata):
            return bad
        eq = band == nodata
        return eq if bad is None else eq | bad

    def profile(self, **overrides) -> dict:
        """A GeoTIFF profile of the stack's grid, updated by ``overrides``."""
        prof = dict(driver='GTiff', width=self.width, height=self.height,
                    count=self.count, dtype=self.dtype.name, crs=self.crs,
                    transform=self.transform, nodata=self.nodata)
        prof.update(overrides)
        return prof

    def close(self):
        for ds in self._datasets:
            ds.close()
        self._datasets = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f'RasterStack({self.paths}, {self.width}x{self.height}, '
                f'{self.count} bands, {self.dtype})')
