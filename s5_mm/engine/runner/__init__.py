from .loops import S4PTeacherStudentTestLoop, S4PTeacherStudentValLoop
from .multi_source_loop import MultiSourceTrainLoop, iters_per_epoch

__all__ = [
    'S4PTeacherStudentTestLoop', 'S4PTeacherStudentValLoop',
    'MultiSourceTrainLoop', 'iters_per_epoch'
]
