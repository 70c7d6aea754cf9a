from . import isaid, landcover, unlabeled  # noqa: F401
from . import transforms  # noqa: F401
from . import isprs, loveda, openearthmap, seg_lists  # noqa: F401
from . import dior, dota  # noqa: F401  (MMRotate DATASETS)
from . import multi_dataset  # noqa: F401
from . import samplers, seeded_dataset  # noqa: F401
