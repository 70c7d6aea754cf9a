"""Simple feature pyramid (ViTDet style) from four same-stride ViT maps
(S5_METHOD.md section 3): stride 4 = ConvT 2x2 -> norm -> GELU -> ConvT 2x2;
stride 8 = ConvT 2x2; stride 16 = identity; stride 32 = max-pool 2."""
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from s5_mm.models.layers.norm import build_norm_2d
from s5_mm.registry import register_seg_and_det


@register_seg_and_det
class SimpleFeaturePyramid(BaseModule):
    """Turn 4 maps at the patch stride (16) into strides 4, 8, 16, 32.

    Module names ``fpn1..fpn4`` follow the released S5 models, so their
    weights map one to one (``tools/model_converters/s5official2s5mm.py``).

    Args:
        in_channels (int | Sequence[int]): Channels of the input maps (all
            equal, the ViT width).
        out_channels (int, optional): Output channels; default
            ``in_channels`` (as in S5). When different, the identity and
            max-pool levels get a 1x1 projection.
        norm_cfg (dict): Norm inside the stride-4 branch; ``LN2d`` is a
            channel LayerNorm.
    """

    def __init__(self,
                 in_channels: Union[int, Sequence[int]],
                 out_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='LN2d', eps=1e-6),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, int):
            in_channels = list(in_channels)
            if len(in_channels) != 4 or len(set(in_channels)) != 1:
                raise ValueError('SimpleFeaturePyramid expects 4 inputs of '
                                 f'equal width, got in_channels={in_channels}')
            in_channels = in_channels[0]
        out_channels = out_channels or in_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        cin, cout = in_channels, out_channels

        def up(i, o):
            return nn.ConvTranspose2d(i, o, kernel_size=2, stride=2)

        self.fpn1 = nn.Sequential(up(cin, cout), build_norm_2d(norm_cfg, cout),
                                  nn.GELU(), up(cout, cout))
        self.fpn2 = nn.Sequential(up(cin, cout))
        proj = [nn.Conv2d(cin, cout, 1)] if cout != cin else []
        self.fpn3 = nn.Sequential(*proj) if proj else nn.Identity()
        self.fpn4 = nn.Sequential(nn.MaxPool2d(kernel_size=2, stride=2),
                                  *([nn.Conv2d(cin, cout, 1)] if proj else []))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        if len(inputs) != 4:
            raise ValueError('SimpleFeaturePyramid expects 4 feature maps, '
                             f'got {len(inputs)}')
        ops = (self.fpn1, self.fpn2, self.fpn3, self.fpn4)
        return tuple(op(x) for op, x in zip(ops, inputs))
