"""LayerNorm over the channels of an NCHW map (the simple feature pyramid's
norm), and a norm builder that knows it in every registry scope."""
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor, nn


class LayerNorm2d(nn.LayerNorm):
    """``nn.LayerNorm`` applied to the channel dim of (N, C, H, W) maps."""

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f'LayerNorm2d expects (N, C, H, W), got shape '
                             f'{tuple(x.shape)}')
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


def build_norm_2d(norm_cfg: dict, num_features: int) -> nn.Module:
    """Build a norm for NCHW maps: ``type='LN2d'`` is :class:`LayerNorm2d`
    (resolved here, so it works under mmseg, mmdet and mmrotate scopes);
    anything else goes through mmcv's ``build_norm_layer``."""
    cfg = dict(norm_cfg)
    if cfg.get('type') == 'LN2d':
        cfg.pop('type')
        cfg.pop('requires_grad', None)
        return LayerNorm2d(num_features, **cfg)
    return build_norm_layer(cfg, num_features)[1]
