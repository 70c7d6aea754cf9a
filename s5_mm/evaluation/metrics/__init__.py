from .rotated_voc_metric import RotatedVOCMetric
from .subset_iou_metric import SubsetIoUMetric

__all__ = ['RotatedVOCMetric', 'SubsetIoUMetric']
