"""Per-image scores for data selection: foreground entropy and pooled feature.

``foreground_entropy`` is S5's criterion (spec section 1) restricted to the
image's **valid** pixels: nodata (the geo loader's ``valid_mask``) and
padding are left out of the mean, so an in-domain tile with a nodata border
is not rejected for its border. ``pooled_feature`` is the global average of
one backbone level over the same valid pixels, L2-normalised.

:class:`SegScorer` runs a trained MMSeg segmentor (``EncoderDecoder`` or an
S4P checkpoint's ``S4PSegmentor``) on batches of raw images: the model's own
``data_preprocessor`` normalises them, the backbone runs once and feeds both
the pooled feature and the decode head. Images are resized to the model's
input size (``mode='resize'``) or cut into input-size tiles
(``mode='tile'``, partial tiles padded and masked) and the tile sums are
combined per image.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

SCORE_MODES = ('resize', 'tile')


def pixel_entropy(probs: Tensor, bg_index: Optional[int] = 0) -> Tensor:
    """``-sum_k p_k log p_k`` over classes ``k != bg_index`` (no
    renormalisation), per pixel: ``(N, K, H, W) -> (N, H, W)``.
    ``bg_index=None`` sums over all classes."""
    ent = -torch.xlogy(probs, probs)  # 0 log 0 = 0
    if bg_index is not None:
        k = probs.shape[1]
        if not -k <= bg_index < k:
            raise ValueError(f'bg_index {bg_index} is outside the model\'s '
                             f'{k} classes')
        keep = torch.ones(k, dtype=torch.bool, device=probs.device)
        keep[bg_index] = False
        ent = ent[:, keep]
    return ent.sum(dim=1)


def foreground_entropy(probs: Tensor,
                       valid: Optional[Tensor] = None,
                       bg_index: Optional[int] = 0) -> Tensor:
    """Mean over valid pixels of :func:`pixel_entropy`: ``(N,)``.

    ``valid`` (N, H, W) bool; None means every pixel. An image without a
    valid pixel gets NaN.
    """
    ent = pixel_entropy(probs.float(), bg_index)
    if valid is None:
        return ent.flatten(1).mean(dim=1)
    valid = valid.to(ent.dtype)
    total = (ent * valid).flatten(1).sum(dim=1)
    count = valid.flatten(1).sum(dim=1)
    return total / count  # 0 / 0 -> NaN


def _feature_weights(valid: Optional[Tensor], shape: Tuple[int, int],
                     n: int, device) -> Tensor:
    """Share of valid input pixels under each feature cell: (N, 1, h, w)."""
    if valid is None:
        return torch.ones((n, 1) + tuple(shape), device=device)
    return F.adaptive_avg_pool2d(valid[:, None].float(), shape)


def pooled_feature(feat: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Valid-pixel weighted global average of ``feat`` (N, C, h, w),
    L2-normalised: (N, C). NaN where an image has no valid pixel."""
    w = _feature_weights(valid, feat.shape[-2:], feat.shape[0], feat.device)
    s = (feat.float() * w).flatten(2).sum(-1)
    s = s / w.flatten(1).sum(-1, keepdim=True)
    return F.normalize(s, dim=1)


def inner_segmentor(model):
    """The module with ``backbone``/``decode_head``: the model itself, or the
    predicting network of a semi-supervised wrapper (``S4PSegmentor``)."""
    m = getattr(model, 'module', model)  # DDP
    for _ in range(3):
        if hasattr(m, 'backbone') and hasattr(m, 'decode_head'):
            return m
        nxt = getattr(m, 'predictor', None)
        if nxt is None:
            break
        m = nxt
    raise TypeError(f'{type(model).__name__} has no backbone/decode_head '
                    '(an MMSeg EncoderDecoder, or a wrapper exposing one as '
                    '`predictor`, is needed for selection scoring)')


@dataclass
class UnitScores:
    """Sums for a batch of model-sized units (whole images or tiles)."""
    ent_sum: Tensor  # (N,) float64
    valid_count: Tensor  # (N,) float64
    feat_sum: Tensor  # (N, C) float64, weighted by valid share
    weight_sum: Tensor  # (N,) float64
    logits: Optional[Tensor] = None  # (N, K, h, w) when asked for


class SegScorer:
    """Scores raw images with a trained MMSeg segmentor.

    Args:
        model: the segmentor (eval mode is set here).
        input_size: (h, w) the model is fed; None keeps each unit's size.
        mode: 'resize' or 'tile' (see the module docstring).
        bg_index: background class excluded from the entropy; None = all.
        feature_level: index into the backbone's outputs that is pooled.
        autocast: None, 'bf16' or 'fp16' (autocast on the model's device).
    """

    def __init__(self, model, input_size: Optional[Sequence[int]] = None,
                 mode: str = 'resize', bg_index: Optional[int] = 0,
                 feature_level: int = -1, autocast: Optional[str] = None):
        if mode not in SCORE_MODES:
            raise ValueError(f'score mode must be one of {SCORE_MODES}, '
                             f'got {mode!r}')
        if mode == 'tile' and input_size is None:
            raise ValueError("mode='tile' needs input_size")
        if autocast not in (None, 'bf16', 'fp16'):
            raise ValueError(f"autocast must be None, 'bf16' or 'fp16', got "
                             f'{autocast!r}')
        self.model = model.eval()
        self.net = inner_segmentor(model)
        self.input_size = tuple(int(v) for v in input_size) \
            if input_size is not None else None
        self.mode = mode
        self.bg_index = bg_index
        self.feature_level = int(feature_level)
        self.autocast = dict(bf16=torch.bfloat16,
                             fp16=torch.float16).get(autocast)
        try:
            self.device = next(model.parameters()).device
        except StopIteration:
            self.device = torch.device('cpu')

    # -- units ------------------------------------------------------------
    def units_of(self, img: Tensor, valid: Tensor):
        """Model-sized units of one image ``(C, H, W)``, valid ``(H, W)``:
        a list of ``(img, valid, (row, col))``."""
        if self.input_size is None or tuple(img.shape[-2:]) == \
                self.input_size:
            return [(img, valid, (0, 0))]
        h, w = self.input_size
        if self.mode == 'resize':
            x = F.interpolate(img[None].float(), size=(h, w),
                              mode='bilinear', align_corners=False)[0]
            v = F.interpolate(valid[None, None].float(), size=(h, w),
                              mode='nearest')[0, 0] > 0.5
            return [(x, v, (0, 0))]
        H, W = img.shape[-2:]
        units = []
        for r in range(0, H, h):
            for c in range(0, W, w):
                x = img.new_zeros((img.shape[0], h, w))
                v = valid.new_zeros((h, w))
                ph, pw = min(h, H - r), min(w, W - c)
                x[:, :ph, :pw] = img[:, r:r + ph, c:c + pw]
                v[:ph, :pw] = valid[r:r + ph, c:c + pw]
                units.append((x, v, (r, c)))
        return units

    # -- forward ----------------------------------------------------------
    @torch.no_grad()
    def score_units(self, imgs: List[Tensor], valids: List[Tensor],
                    want_logits: bool = False) -> UnitScores:
        """Sums over units of one size (C, h, w) each."""
        from mmseg.structures import SegDataSample
        h, w = imgs[0].shape[-2:]
        samples = [SegDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
            for _ in imgs]
        # the inner network's own preprocessor (an S4P wrapper's is a
        # multi-branch one)
        data = self.net.data_preprocessor(
            dict(inputs=list(imgs), data_samples=samples), False)
        inputs = data['inputs']
        ph, pw = inputs.shape[-2:]
        metas = [dict(img_shape=(ph, pw), ori_shape=(ph, pw),
                      pad_shape=(ph, pw)) for _ in imgs]
        valid = torch.stack(valids).to(inputs.device)
        if (ph, pw) != (h, w):  # preprocessor padding is invalid
            valid = F.pad(valid, (0, pw - w, 0, ph - h), value=False)
        net = self.net
        ctx = torch.autocast(inputs.device.type, dtype=self.autocast) \
            if self.autocast is not None else contextlib.nullcontext()
        with ctx:
            feats = net.backbone(inputs)
            x = net.neck(feats) if getattr(net, 'with_neck', False) else feats
            logits = net.decode_head.predict(x, metas, net.test_cfg)
        feat = feats[self.feature_level] if isinstance(
            feats, (list, tuple)) else feats
        probs = logits.float().softmax(dim=1)
        ent = pixel_entropy(probs, self.bg_index)
        vf = valid.to(ent.dtype)
        wts = _feature_weights(valid, feat.shape[-2:], feat.shape[0],
                               feat.device)
        fsum = (feat.float() * wts).flatten(2).sum(-1)
        # the pooled feature's weights are valid shares per feature cell
        return UnitScores(
            ent_sum=(ent * vf).flatten(1).sum(1).double().cpu(),
            valid_count=vf.flatten(1).sum(1).double().cpu(),
            feat_sum=fsum.double().cpu(),
            weight_sum=wts.flatten(1).sum(1).double().cpu(),
            logits=logits[..., :h, :w].float() if want_logits else None)

    def score_images(self, imgs: List[Tensor], valids: List[Tensor],
                     want_labels: bool = False):
        """Per image: entropy (float), feature (C,) float32 numpy, valid
        fraction and, if asked, the argmax label map (H, W) uint8 (255 on
        invalid pixels). Images may differ in size."""
        units, owner = [], []
        for i, (img, v) in enumerate(zip(imgs, valids)):
            for u in self.units_of(img, v):
                units.append(u)
                owner.append(i)
        # one forward per unit size (all equal unless input_size is None)
        groups = {}
        for j, u in enumerate(units):
            groups.setdefault(tuple(u[0].shape), []).append(j)
        n = len(imgs)
        ent = torch.zeros(n, dtype=torch.float64)
        cnt = torch.zeros(n, dtype=torch.float64)
        fsum = None
        wsum = torch.zeros(n, dtype=torch.float64)
        logits_of = {}
        for idx in groups.values():
            s = self.score_units([units[j][0] for j in idx],
                                 [units[j][1] for j in idx], want_labels)
            if fsum is None:
                fsum = torch.zeros((n, s.feat_sum.shape[1]),
                                   dtype=torch.float64)
            own = torch.tensor([owner[j] for j in idx])
            ent.index_add_(0, own, s.ent_sum)
            cnt.index_add_(0, own, s.valid_count)
            wsum.index_add_(0, own, s.weight_sum)
            fsum.index_add_(0, own, s.feat_sum)
            if want_labels:
                for k, j in enumerate(idx):
                    logits_of[j] = s.logits[k]
        entropy = (ent / cnt).numpy()  # NaN without valid pixels
        feat = F.normalize(fsum / wsum[:, None], dim=1).float().numpy()
        out = dict(entropy=entropy, feature=feat,
                   valid_fraction=np.array([
                       float(v.float().mean()) for v in valids]))
        if want_labels:
            out['labels'] = [self._label_map(imgs[i], valids[i], [
                (units[j][2], logits_of[j]) for j in range(len(units))
                if owner[j] == i]) for i in range(n)]
        return out

    def _label_map(self, img: Tensor, valid: Tensor, parts) -> np.ndarray:
        H, W = img.shape[-2:]
        if self.mode == 'resize':  # one unit: back to the image's size
            logits = parts[0][1]
            if tuple(logits.shape[-2:]) != (H, W):
                logits = F.interpolate(logits[None], size=(H, W),
                                       mode='bilinear',
                                       align_corners=False)[0]
            lab = logits.argmax(0)
        else:
            lab = torch.zeros((H, W), dtype=torch.long)
            for (r, c), logits in parts:
                ph, pw = min(logits.shape[-2], H - r), min(
                    logits.shape[-1], W - c)
                lab[r:r + ph, c:c + pw] = logits[:, :ph, :pw].argmax(0).cpu()
        lab = lab.cpu().to(torch.uint8)
        lab[~valid.cpu()] = 255
        return lab.numpy()


def write_label_map(label: np.ndarray, dst: str,
                    geo: Optional[dict] = None) -> str:
    """Write an argmax map as GeoTIFF (``geo`` holds ``crs`` WKT and
    ``transform`` coefficients: georeferenced like the input) or PNG.
    Written to a temporary name first, then renamed. Returns the path."""
    os.makedirs(osp.dirname(dst) or '.', exist_ok=True)
    tmp = f'{dst}.tmp{os.getpid()}'
    if geo is not None:
        import rasterio
        from rasterio.transform import Affine
        with rasterio.open(
                tmp, 'w', driver='GTiff', width=label.shape[1],
                height=label.shape[0], count=1, dtype='uint8', nodata=255,
                crs=geo.get('crs'),
                transform=Affine(*geo['transform'])) as d:
            d.write(label, 1)
    else:
        from PIL import Image
        Image.fromarray(label).save(tmp, format='PNG')
    os.replace(tmp, dst)
    return dst
