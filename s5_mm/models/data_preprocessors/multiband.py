"""SegDataPreProcessor for any number of bands (multispectral inputs).

mmengine's ImgDataPreprocessor only accepts 1 or 3 mean/std values; remote
sensing inputs have 4-13 bands with their own statistics.
"""
from typing import Optional, Sequence

import torch
from mmseg.models.data_preprocessor import SegDataPreProcessor

from s5_mm.registry import MODELS


@MODELS.register_module()
class MultiBandSegDataPreProcessor(SegDataPreProcessor):
    """Normalise each of N bands with its own mean/std, then pad and batch
    like :class:`SegDataPreProcessor` (whose other arguments it takes).

    Args:
        mean (Sequence[float], optional): per-band means, one per band.
        std (Sequence[float], optional): per-band standard deviations.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 **kwargs):
        super().__init__(mean=None, std=None, **kwargs)
        if (mean is None) != (std is None):
            raise ValueError('mean and std must be given together')
        self.num_bands = None
        if mean is None:
            return
        if len(mean) != len(std):
            raise ValueError(f'{len(mean)} band means but {len(std)} stds')
        if any(s <= 0 for s in std):
            raise ValueError(f'std must be positive, got {list(std)}')
        self.num_bands = len(mean)
        self._enable_normalize = True
        self.register_buffer('mean',
                             torch.tensor(mean, dtype=torch.float32).view(
                                 -1, 1, 1), False)
        self.register_buffer('std',
                             torch.tensor(std, dtype=torch.float32).view(
                                 -1, 1, 1), False)

    def forward(self, data: dict, training: bool = False) -> dict:
        if self.num_bands is not None:
            for i, img in enumerate(data['inputs']):
                if img.shape[0] != self.num_bands:
                    samples = data.get('data_samples') or []
                    path = samples[i].metainfo.get('img_path', '?') \
                        if i < len(samples) else '?'
                    raise ValueError(
                        f'image {path} has {img.shape[0]} bands but the data '
                        f'preprocessor normalises {self.num_bands}')
        return super().forward(data, training)
