from . import geo_loading, semi_transforms  # noqa: F401
from . import label_check  # noqa: F401
