from .mdf_metric import MultiDatasetSegMetric, S5IoUMetric
from .subset_iou_metric import SubsetIoUMetric

__all__ = ['MultiDatasetSegMetric', 'S5IoUMetric', 'SubsetIoUMetric']
