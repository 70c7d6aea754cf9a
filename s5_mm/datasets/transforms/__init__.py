from . import geo_loading, geometric, semi_transforms  # noqa: F401
