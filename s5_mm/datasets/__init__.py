from . import isaid, landcover, landcover_prepare, unlabeled  # noqa: F401
from . import transforms  # noqa: F401
from . import multi_dataset  # noqa: F401
