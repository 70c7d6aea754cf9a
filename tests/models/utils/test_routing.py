"""Dataset routing shared by the multi-dataset models."""
import numpy as np
import pytest
import torch
from torch import nn

from s5_mm.models.utils.routing import (expert_ids, expert_index_map,
                                        group_by_dataset,
                                        routed_backbone_forward,
                                        sample_dataset_names, take_samples)

NAMES = ['potsdam', 'loveda', 'isaid']


def test_names_from_dataset_name_and_id():
    metas = [dict(dataset_name='isaid'), dict(dataset_id=0),
             dict(dataset_id=np.int64(1)), dict(dataset_id=torch.tensor(2))]
    assert sample_dataset_names(metas, NAMES) == [
        'isaid', 'potsdam', 'loveda', 'isaid'
    ]
    # dataset_name wins over dataset_id
    assert sample_dataset_names([dict(dataset_name='loveda', dataset_id=0)],
                                NAMES) == ['loveda']
    # a single dataset needs no key
    assert sample_dataset_names([{}, {}], ['isaid']) == ['isaid', 'isaid']


@pytest.mark.parametrize('bad', [-1, -3, 3, 10])
def test_dataset_id_range_check(bad):
    metas = [dict(dataset_id=0), dict(dataset_id=bad, img_path='b/x.png')]
    with pytest.raises(KeyError) as err:
        sample_dataset_names(metas, NAMES)
    msg = str(err.value)
    assert f'dataset_id {bad} out of range [0, 3)' in msg
    assert 'sample 1 (b/x.png)' in msg


def test_dataset_id_must_be_an_integer():
    with pytest.raises(TypeError, match='dataset_id must be an integer'):
        sample_dataset_names([dict(dataset_id=1.5)], NAMES)


def test_unknown_name_and_missing_key_messages():
    with pytest.raises(KeyError) as err:
        sample_dataset_names(
            [dict(dataset_name='potsdam'),
             dict(dataset_name='dota', img_path='d/y.png')], NAMES)
    msg = str(err.value)
    assert "sample 1 (d/y.png): unknown dataset 'dota'" in msg
    assert str(NAMES) in msg
    with pytest.raises(KeyError, match="neither 'dataset_name' nor"):
        sample_dataset_names([dict(img_path='a.png')], NAMES)


def test_group_by_dataset_first_appearance_order():
    groups = group_by_dataset(
        ['loveda', 'potsdam', 'loveda', 'isaid', 'potsdam'])
    assert groups == [('loveda', [0, 2]), ('potsdam', [1, 4]), ('isaid', [3])]
    assert group_by_dataset([2, 0, 2]) == [(2, [0, 2]), (0, [1])]
    assert group_by_dataset([]) == []


def test_take_samples_tensor_and_sequences():
    x = torch.arange(4 * 3).view(4, 3)
    torch.testing.assert_close(take_samples(x, [1, 3], 4), x[[1, 3]])
    assert take_samples(x, [0, 1, 2, 3], 4) is x  # whole batch: no copy
    # same length but another order is a real gather
    torch.testing.assert_close(take_samples(x, [3, 2, 1, 0], 4), x.flip(0))
    feats = (x, x * 10)
    out = take_samples(feats, [2], 4)
    assert isinstance(out, tuple) and len(out) == 2
    torch.testing.assert_close(out[1], (x * 10)[2:3])
    out = take_samples([x, x + 1], [0, 2], 4)
    assert isinstance(out, list)
    torch.testing.assert_close(out[1], (x + 1)[[0, 2]])
    assert take_samples(feats, [0, 1, 2, 3], 4) is feats


class _MoE(nn.Module):

    def __init__(self, num_experts, dataset_names=None):
        super().__init__()
        self.num_experts = num_experts
        self.dataset_names = dataset_names

    def forward(self, x, dataset_ids=None):
        return x if dataset_ids is None else dataset_ids


def test_expert_index_map():
    assert expert_index_map(['a', 'b'], nn.Identity()) == {}
    assert expert_index_map(['a', 'b'], _MoE(0)) == {}
    # by the backbone's names, whatever the model's order
    assert expert_index_map(['b', 'a'], _MoE(2, ['a', 'b'])) == {
        'a': 0, 'b': 1}
    # without backbone names: the model's order, one dataset per expert
    assert expert_index_map(['b', 'a'], _MoE(2)) == {'b': 0, 'a': 1}
    with pytest.raises(ValueError, match='3 experts but there are 2'):
        expert_index_map(['a', 'b'], _MoE(3))
    with pytest.raises(ValueError, match=r"datasets \['c'\] have no expert"):
        expert_index_map(['a', 'c'], _MoE(2, ['a', 'b']))
    with pytest.raises(ValueError, match='must name its 3 experts'):
        expert_index_map(['a', 'b'], _MoE(3, ['a', 'b']))


def test_expert_ids_and_routed_forward():
    expert_of = {'a': 1, 'b': 0}
    ids = expert_ids(['a', 'b', 'a'], expert_of)
    assert ids.dtype == torch.long and ids.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match='needs the dataset of each sample'):
        expert_ids(None, expert_of)
    x = torch.zeros(2, 3)
    bb = _MoE(2)
    assert routed_backbone_forward(bb, x, ['b', 'a'],
                                   expert_of).tolist() == [0, 1]
    assert routed_backbone_forward(bb, x, None, {}) is x
