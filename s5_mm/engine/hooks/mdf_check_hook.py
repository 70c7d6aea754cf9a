"""Start-up check that a multi-dataset config is consistent: the datasets of
the train / val / test loaders, the model's heads and the evaluator's
per-dataset metrics must name the same datasets."""
from typing import List, Optional

from mmengine.hooks import Hook

from s5_mm.datasets.multi_dataset import dataset_names_of
from s5_mm.datasets.seeded_dataset import unwrap_dataset
from s5_mm.registry import HOOKS


def _model_names(runner) -> Optional[List[str]]:
    model = getattr(runner.model, 'module', runner.model)
    names = getattr(model, 'dataset_names', None)
    return list(names) if names is not None else None


def _metric_names(evaluator) -> Optional[List[str]]:
    for metric in getattr(evaluator, 'metrics', []):
        names = getattr(metric, 'dataset_names', None)
        if names is not None:
            return list(names)
    return None


@HOOKS.register_module()
class MultiDatasetCheckHook(Hook):
    """Raise before training / testing when datasets and heads disagree.

    - train: every training dataset has a head and every head a training
      dataset (``allow_untrained_heads=True`` lifts the second rule);
    - val / test: every dataset has a head and, with a
      ``MultiDatasetSegMetric``, a metric; every metric has a head.
    A dataset without a name is accepted only by a one-head model.
    The model's ``classifier_init.dataset_classes`` must be the class lists
    of the datasets of those names (the kept / merged classifiers rely on
    them).
    """
    priority = 'VERY_HIGH'

    def __init__(self, allow_untrained_heads: bool = False):
        self.allow_untrained_heads = allow_untrained_heads

    def _check(self, runner, loader, what: str, evaluator=None,
               exact: bool = False) -> None:
        heads = _model_names(runner)
        if heads is None or loader is None:
            return
        names = dataset_names_of(loader.dataset)
        if None in names:
            if len(heads) == 1 and len(names) == 1:
                return
            raise ValueError(
                f'{what}: dataset {names.index(None)} has no dataset_name, '
                f'so its samples cannot be routed to one of the heads {heads}'
                '; use MDFConcatDataset(dataset_names=[...])')
        no_head = [n for n in names if n not in heads]
        if no_head:
            raise ValueError(f'{what}: datasets {no_head} have no head; the '
                             f'model has heads {heads}')
        if exact and not self.allow_untrained_heads:
            unused = [h for h in heads if h not in names]
            if unused:
                raise ValueError(
                    f'{what}: heads {unused} have no training dataset (the '
                    f'datasets are {names}); remove them or set '
                    'MultiDatasetCheckHook(allow_untrained_heads=True)')
        metric_names = _metric_names(evaluator)
        if metric_names is not None:
            no_metric = [n for n in names if n not in metric_names]
            if no_metric:
                raise ValueError(f'{what}: datasets {no_metric} have no '
                                 f'metric in the evaluator ({metric_names})')
            stray = [n for n in metric_names if n not in heads]
            if stray:
                raise ValueError(f'{what} evaluator: metrics for datasets '
                                 f'{stray} that have no head ({heads})')

    @staticmethod
    def _check_classes(runner, loader, what: str) -> None:
        model = getattr(runner.model, 'module', runner.model)
        declared = ((getattr(model, '_classifier_init_arg', None) or {})
                    .get('dataset_classes') or {})
        if not declared or loader is None:
            return
        dataset = unwrap_dataset(loader.dataset)
        parts = getattr(dataset, 'datasets', [dataset])
        for name, part in zip(dataset_names_of(loader.dataset), parts):
            classes = (getattr(part, 'metainfo', None) or {}).get('classes')
            if name in declared and classes is not None and \
                    list(classes) != list(declared[name]):
                raise ValueError(
                    f'{what}: dataset {name!r} has classes {list(classes)}, '
                    f'model.classifier_init.dataset_classes.{name} says '
                    f'{list(declared[name])}')

    def before_train(self, runner) -> None:
        self._check(runner, runner.train_loop.dataloader, 'train_dataloader',
                    exact=True)
        self._check_classes(runner, runner.train_loop.dataloader,
                            'train_dataloader')
        val = runner.val_loop
        if val is not None:
            self._check(runner, val.dataloader, 'val_dataloader',
                        val.evaluator)

    def before_test(self, runner) -> None:
        test = runner.test_loop
        self._check(runner, test.dataloader, 'test_dataloader',
                    test.evaluator)
