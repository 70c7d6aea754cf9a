from . import geo_loading, geometric, label_check, semi_transforms  # noqa: F401
