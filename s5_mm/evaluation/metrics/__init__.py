from .mdf_metric import MultiDatasetSegMetric, S5IoUMetric
from .rotated_voc_metric import RotatedVOCMetric
from .subset_iou_metric import SubsetIoUMetric

__all__ = [
    'MultiDatasetSegMetric', 'RotatedVOCMetric', 'S5IoUMetric',
    'SubsetIoUMetric'
]
