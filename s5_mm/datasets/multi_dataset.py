"""Concatenated datasets whose samples carry their dataset's name, for the
multi-dataset (MoE-MDF) segmentor, its sampler and its metric.

``MDFConcatDataset`` is MMDet's ``ConcatDataset`` (one metainfo per dataset,
``cumulative_sizes`` for ``mmdet.MultiSourceSampler``) that also

- names each dataset (``dataset_names``, default: each dataset's own
  ``dataset_name`` attribute or metainfo entry),
- writes the name into every sample's metainfo (``dataset_name``), after
  the pipeline, so datasets that do not carry one (e.g. MMSeg's built-ins)
  can be routed without changing their pipelines,
- always exposes ``metainfo`` as a list with ``dataset_name`` in each
  entry (the per-dataset metric maps it by name).
"""
from typing import List, Optional, Sequence, Union

from mmdet.datasets import ConcatDataset
from mmengine.dataset import BaseDataset

from s5_mm.registry import DATASETS
from .seeded_dataset import unwrap_dataset


def own_dataset_name(dataset) -> Optional[str]:
    """The routing name a dataset gives itself, if any."""
    name = getattr(dataset, 'dataset_name', None)
    if name is None:
        meta = getattr(dataset, 'metainfo', None)
        if isinstance(meta, dict):
            name = meta.get('dataset_name')
    return name


def dataset_names_of(dataset) -> List[Optional[str]]:
    """Dataset name of each part of ``dataset`` (one entry for a plain
    dataset; None where a part has no name)."""
    dataset = unwrap_dataset(dataset)  # its parts look like the wrapper's
    if isinstance(dataset, MDFConcatDataset):
        return list(dataset.dataset_names)
    parts = getattr(dataset, 'datasets', None)
    if parts is not None and hasattr(dataset, 'cumulative_sizes'):
        return [own_dataset_name(d) for d in parts]
    inner = getattr(dataset, 'dataset', None)  # RepeatDataset & co.
    if inner is not None and own_dataset_name(dataset) is None:
        return dataset_names_of(inner)
    return [own_dataset_name(dataset)]


def _tag(data_samples, name: str, where: str) -> None:
    if isinstance(data_samples, dict):  # mmdet.MultiBranch: one per branch
        for branch in data_samples.values():
            _tag(branch, name, where)
        return
    if isinstance(data_samples, (list, tuple)):
        for s in data_samples:
            _tag(s, name, where)
        return
    if data_samples is None:
        return
    old = data_samples.metainfo.get('dataset_name', name)
    if old != name:
        raise ValueError(f'{where}: sample {data_samples.metainfo.get("img_path")}'
                         f' carries dataset_name {old!r}, but its dataset is '
                         f'named {name!r} in dataset_names')
    data_samples.set_metainfo(dict(dataset_name=name))


@DATASETS.register_module()
class MDFConcatDataset(ConcatDataset):
    """Named concatenation of datasets (see the module doc).

    Args:
        datasets (Sequence[dict | BaseDataset]): the datasets, in the order
            of ``source_ratio`` of ``mmdet.MultiSourceSampler``.
        dataset_names (Sequence[str], optional): one name per dataset;
            default: each dataset's own ``dataset_name``.
        lazy_init (bool): as MMEngine's ``ConcatDataset``.
    """

    def __init__(self,
                 datasets: Sequence[Union[BaseDataset, dict]],
                 dataset_names: Optional[Sequence[str]] = None,
                 lazy_init: bool = False):
        if not datasets:
            raise ValueError('MDFConcatDataset: datasets is empty')
        super().__init__(datasets, lazy_init=lazy_init)
        own = [own_dataset_name(d) for d in self.datasets]
        if dataset_names is None:
            missing = [f'{i} ({type(d).__name__})'
                       for i, (d, n) in enumerate(zip(self.datasets, own))
                       if n is None]
            if missing:
                raise ValueError(
                    f'MDFConcatDataset: datasets {missing} have no '
                    'dataset_name; pass dataset_names=[...] (one per dataset)')
            names = own
        else:
            names = list(dataset_names)
            if len(names) != len(self.datasets):
                raise ValueError(
                    f'MDFConcatDataset: {len(names)} dataset_names {names} '
                    f'for {len(self.datasets)} datasets')
            for i, (n, o) in enumerate(zip(names, own)):
                if o is not None and o != n:
                    raise ValueError(
                        f'MDFConcatDataset: dataset {i} '
                        f'({type(self.datasets[i]).__name__}) is named {o!r} '
                        f'but dataset_names[{i}] is {n!r}')
        if len(set(names)) != len(names):
            raise ValueError(f'MDFConcatDataset: duplicate dataset_names '
                             f'{names}; each dataset needs its own head')
        self.dataset_names = names
        self._set_metainfo()

    def _set_metainfo(self) -> None:
        sizes = getattr(self, 'cumulative_sizes', None)
        metas = []
        for d, n in zip(self.datasets, self.dataset_names):
            meta = dict(d.metainfo, dataset_name=n)
            if sizes is not None:
                meta['cumulative_sizes'] = list(sizes)
            metas.append(meta)
        self._metainfo = metas

    def full_init(self):
        if self._fully_initialized:
            return
        super().full_init()
        if hasattr(self, 'dataset_names'):
            self._set_metainfo()

    def get_data_info(self, idx: int) -> dict:
        dataset_idx, _ = self._get_ori_dataset_idx(idx)
        info = super().get_data_info(idx)
        info['dataset_name'] = self.dataset_names[dataset_idx]
        return info

    def __getitem__(self, idx):
        if not self._fully_initialized:
            self.full_init()
        dataset_idx, sample_idx = self._get_ori_dataset_idx(idx)
        data = self.datasets[dataset_idx][sample_idx]
        if isinstance(data, dict) and 'data_samples' in data:
            _tag(data['data_samples'], self.dataset_names[dataset_idx],
                 'MDFConcatDataset')
        return data
