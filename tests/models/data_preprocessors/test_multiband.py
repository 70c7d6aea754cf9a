import pytest
import torch
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

from s5_mm.models.data_preprocessors import MultiBandSegDataPreProcessor


def _sample(h, w, path='tile.tif'):
    s = SegDataSample(metainfo=dict(img_path=path))
    s.gt_sem_seg = PixelData(data=torch.zeros(1, h, w, dtype=torch.long))
    return s


def test_normalises_each_band_and_pads_with_zero():
    pre = MultiBandSegDataPreProcessor(
        mean=[1., 2., 3., 4., 5., 6.], std=[1., 2., 1., 2., 1., 2.],
        size=(4, 4), pad_val=0, seg_pad_val=255)
    img = torch.arange(6, dtype=torch.float32).view(6, 1, 1).expand(6, 3, 3)
    out = pre(dict(inputs=[img.clone()], data_samples=[_sample(3, 3)]),
              training=True)
    x = out['inputs']
    assert x.shape == (1, 6, 4, 4)
    expected = (torch.arange(6.) - torch.arange(1., 7.)) / torch.tensor(
        [1., 2., 1., 2., 1., 2.])
    assert torch.allclose(x[0, :, 1, 1], expected)
    assert torch.all(x[0, :, 3, :] == 0)  # padded row
    assert torch.all(out['data_samples'][0].gt_sem_seg.data[0, 3] == 255)


def test_band_count_mismatch_names_the_file():
    pre = MultiBandSegDataPreProcessor(mean=[0.] * 6, std=[1.] * 6)
    with pytest.raises(ValueError, match='scene_4b.tif has 4 bands'):
        pre(dict(inputs=[torch.zeros(4, 2, 2)],
                 data_samples=[_sample(2, 2, 'scene_4b.tif')]))


def test_mean_std_lengths_must_match():
    with pytest.raises(ValueError, match='6 band means but 5 stds'):
        MultiBandSegDataPreProcessor(mean=[0.] * 6, std=[1.] * 5)
