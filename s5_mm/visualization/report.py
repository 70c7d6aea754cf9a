"""Pictures for run reports: GeoTIFF tiles as false colour, class maps in a
dataset's palette, nearest-neighbour upscaling, a class legend."""
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from .display import to_display_rgb

IGNORE = 255


def read_tile(path) -> Tuple[np.ndarray, np.ndarray]:
    """``(C, H, W)`` float32 bands (nodata set to 0, as
    ``LoadGeoImageFromFile``) and the ``(H, W)`` invalid mask (any band
    nodata or non-finite)."""
    import rasterio
    with rasterio.open(path) as src:
        data = src.read(masked=True).astype(np.float32)
    invalid = np.ma.getmaskarray(data).any(axis=0)
    arr = data.filled(0)
    invalid |= ~np.isfinite(arr).all(axis=0)
    arr[:, invalid] = 0
    return np.ascontiguousarray(arr), invalid


def read_labels(path, offset: int = -1, num_classes: Optional[int] = None):
    """Label tile -> int64 classes (``raw + offset``), ``IGNORE`` where the
    file has nodata or the class is out of range."""
    import rasterio
    with rasterio.open(path) as src:
        raw = src.read(1, masked=True)
    lab = np.ma.filled(raw.astype(np.float64), np.nan) + offset
    bad = ~np.isfinite(lab) | (lab < 0)
    if num_classes is not None:
        bad |= lab >= num_classes
    out = np.where(bad, IGNORE, np.nan_to_num(lab)).astype(np.int64)
    return out


def false_colour(bands: np.ndarray, invalid=None, rgb_bands=(3, 2, 1)):
    """``(C, H, W)`` -> ``(H, W, 3)`` uint8 (default NIR, red, green)."""
    valid = None if invalid is None else ~np.asarray(invalid, bool)
    return to_display_rgb(np.moveaxis(bands, 0, -1), rgb_bands, valid)


def colorize(labels: np.ndarray, palette: Sequence[Sequence[int]],
             invalid=None) -> np.ndarray:
    """Class map -> RGB in ``palette``; ignore / invalid pixels black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)
    lab = np.asarray(labels).astype(np.int64)
    if lab.min(initial=0) < 0 or lab.max(initial=0) > 255:
        raise ValueError(f'class ids must be in 0..255, got '
                         f'{lab.min()}..{lab.max()}')
    out = lut[lab]
    out[lab == IGNORE] = 0
    if invalid is not None:
        out[np.asarray(invalid, bool)] = 0
    return out


def mask_picture(keep: np.ndarray, invalid=None) -> np.ndarray:
    """Binary mask -> RGB: kept white, dropped dark grey, invalid black."""
    out = np.full(keep.shape + (3, ), 64, np.uint8)
    out[np.asarray(keep, bool)] = 255
    if invalid is not None:
        out[np.asarray(invalid, bool)] = 0
    return out


def upscale(rgb: np.ndarray, min_size: int) -> np.ndarray:
    """Nearest-neighbour upscaling by the smallest integer factor that makes
    the shorter side at least ``min_size`` (pixels stay square blocks)."""
    h, w = rgb.shape[:2]
    k = max(1, -(-min_size // min(h, w)))
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def save_png(rgb: np.ndarray, path) -> str:
    from PIL import Image
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(path)
    return str(path)


def with_legend(image_png, classes: Sequence[str],
                palette: Sequence[Sequence[int]], out_png,
                min_width: int = 800, title: Optional[str] = None,
                font_size: int = 18) -> str:
    """``image_png`` upscaled (nearest) to at least ``min_width`` wide, with a
    legend column: one swatch in the palette colour and the name per
    class, and black = nodata."""
    from PIL import Image, ImageDraw, ImageFont
    if len(palette) < len(classes):
        raise ValueError(f'palette has {len(palette)} colours for '
                         f'{len(classes)} classes')
    img = Image.open(image_png).convert('RGB')
    k = max(1, -(-min_width // img.width))
    img = img.resize((img.width * k, img.height * k), Image.NEAREST)
    font = ImageFont.load_default(size=font_size)
    row, pad, sw = font_size + 10, 12, font_size
    names = list(classes) + ['nodata']
    colours = [tuple(int(c) for c in p) for p in palette[:len(classes)]]
    colours.append((0, 0, 0))
    text_w = max(int(font.getlength(n)) for n in names + [title or ''])
    legend_w = pad * 3 + sw + text_w
    top = row if title else 0
    height = max(img.height, top + pad * 2 + row * len(names))
    canvas = Image.new('RGB', (img.width + legend_w, height), 'white')
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0 = img.width + pad
    if title:
        draw.text((x0, pad), title, fill='black', font=font)
    for i, (name, col) in enumerate(zip(names, colours)):
        y = top + pad + i * row
        draw.rectangle([x0, y, x0 + sw, y + sw], fill=col, outline='black')
        draw.text((x0 + sw + pad, y + 2), name, fill='black', font=font)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_png)
    return str(out_png)
