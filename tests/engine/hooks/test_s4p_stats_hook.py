"""S4PStatsHook: class shares from device counts, collapse warning, NaN."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

import s5_mm  # noqa: F401
from s5_mm.engine.hooks import S4PStatsHook


class FakeModel(torch.nn.Module):

    def __init__(self, counts):
        super().__init__()
        self.register_buffer('pl_class_counts', torch.tensor(counts))

    def pop_pseudo_label_counts(self):
        c = self.pl_class_counts.clone()
        self.pl_class_counts.zero_()
        return c


def fake_runner(counts, it=0, classes=('sea', 'land', 'ice')):
    hub = MessageHub.get_instance(f'test_s4p_stats_{id(counts)}')
    return SimpleNamespace(
        model=FakeModel(counts), iter=it, message_hub=hub,
        train_dataloader=SimpleNamespace(
            dataset=SimpleNamespace(metainfo=dict(classes=classes))))


def test_shares_logged_and_counts_reset():
    runner = fake_runner([6.0, 2.0, 0.0])
    hook = S4PStatsHook(interval=1, collapse_share=0.9)
    hook.after_train_iter(runner, 0, outputs=dict(loss=torch.tensor(1.0)))
    assert hook.last_shares == {'sea': 0.75, 'land': 0.25, 'ice': 0.0}
    assert runner.message_hub.get_scalar(
        'train/pl_share/sea').current() == 0.75
    assert runner.model.pl_class_counts.sum() == 0


def test_interval_and_collapse_warning():
    runner = fake_runner([95.0, 5.0, 0.0], it=0)
    hook = S4PStatsHook(interval=2, collapse_share=0.9)
    hook.after_train_iter(runner, 0, outputs={})
    assert hook.last_shares is None  # iteration 1 of 2: not yet
    runner.iter = 1
    logged = []
    import s5_mm.engine.hooks.s4p_stats_hook as mod
    orig = mod.print_log
    mod.print_log = lambda msg, **kw: logged.append((msg, kw.get('level')))
    try:
        hook.after_train_iter(runner, 1, outputs={})
    finally:
        mod.print_log = orig
    assert hook.last_shares['sea'] == pytest.approx(0.95)
    assert any('collapse' in m and lvl == 30 for m, lvl in logged)


def test_non_finite_loss_names_the_key():
    runner = fake_runner([1.0, 1.0, 1.0], it=6)
    hook = S4PStatsHook(interval=100)
    with pytest.raises(FloatingPointError, match='unsup_loss_ce.*7'):
        hook.after_train_iter(
            runner, 0, outputs=dict(sup_loss_ce=torch.tensor(0.3),
                                    unsup_loss_ce=torch.tensor(float('nan')),
                                    unsup_mask_ratio=torch.tensor(0.2)))
