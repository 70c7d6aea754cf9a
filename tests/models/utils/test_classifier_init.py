"""Classifier start rules (issue 20, item 1): MergedClassifier and the plan."""
import pytest
import torch

from s5_mm.models.utils.classifier_init import (MergedClassifier,
                                                plan_classifier_init)

SRC = ('developed', 'agriculture', 'herbaceous', 'shrubland', 'forest',
       'water', 'sediment')
LC3 = ('non-vegetation', 'vegetation', 'water')
LC3_MAP = {'non-vegetation': ['developed', 'sediment'],
           'vegetation': ['agriculture', 'herbaceous', 'shrubland', 'forest'],
           'water': 'water'}


def test_merged_classifier_gives_the_merged_softmax():
    torch.manual_seed(0)
    source = torch.nn.Conv2d(5, 7, 1)
    groups = [[0, 6], [1, 2, 3, 4], [5]]
    merged = MergedClassifier(5, groups, 7)
    assert merged.load_state_dict(source.state_dict()) is not None
    x = torch.randn(2, 5, 3, 4)
    p_src = source(x).softmax(1)
    expected = torch.stack([p_src[:, g].sum(1) for g in groups], 1)
    out = merged(x)
    assert out.shape == (2, 3, 3, 4)
    torch.testing.assert_close(out.softmax(1), expected, atol=1e-6,
                               rtol=1e-5)
    # it trains: every source row gets a gradient
    out.logsumexp(1).sum().backward()
    assert (merged.weight.grad.abs().sum((1, 2, 3)) > 0).all()
    with pytest.raises(ValueError, match='at least one'):
        MergedClassifier(5, [[0], []], 7)
    with pytest.raises(ValueError, match='outside'):
        MergedClassifier(5, [[0], [9]], 7)


def test_plan_rules_by_class_names():
    plan = plan_classifier_init(
        dict(checkpoint_classes=SRC,
             dataset_classes=dict(lc7=SRC, lc3=LC3, other=('a', 'b')),
             class_maps=dict(lc3=LC3_MAP)), ['lc7', 'lc3', 'other', 'x'])
    assert plan['lc7'] == dict(rule='keep')
    assert plan['lc3'] == dict(rule='merge', groups=[[0, 6], [1, 2, 3, 4],
                                                     [5]])
    assert plan['other'] == plan['x'] == dict(rule='new')
    # the same names in another order is another label space
    order = plan_classifier_init(
        dict(checkpoint_classes=SRC, dataset_classes=dict(a=SRC[::-1])),
        ['a'])
    assert order['a']['rule'] == 'new'
    assert plan_classifier_init(None, ['a'])['a']['rule'] == 'new'


@pytest.mark.parametrize('cfg, needle', [
    (dict(checkpoint_classes=SRC, class_maps=dict(lc3=dict(
        LC3_MAP, water=['lake'])), dataset_classes=dict(lc3=LC3)), 'lake'),
    (dict(checkpoint_classes=SRC, class_maps=dict(lc3={'water': 'water'}),
          dataset_classes=dict(lc3=LC3)), 'missing'),
    (dict(checkpoint_classes=SRC, dataset_classes=dict(lc9=SRC)), 'lc9'),
    (dict(dataset_classes=dict(lc3=LC3)), 'checkpoint_classes'),
    (dict(checkpoint_classes=SRC, typo=1), 'typo'),
])
def test_plan_errors_name_the_key(cfg, needle):
    with pytest.raises(KeyError, match=needle):
        plan_classifier_init(cfg, ['lc3'])


def test_merge_lut():
    from s5_mm.models.utils.classifier_init import merge_lut
    cfg = dict(checkpoint_classes=SRC, dataset_classes=dict(lc3=LC3,
                                                            lc7=SRC),
               class_maps=dict(lc3=LC3_MAP))
    assert merge_lut(cfg, 'lc3').tolist() == [0, 1, 1, 1, 1, 2, 0]
    partial = dict(cfg, class_maps=dict(lc3=dict(LC3_MAP,
                                                 vegetation=['forest'])))
    with pytest.raises(ValueError, match='agriculture'):
        merge_lut(partial, 'lc3')
