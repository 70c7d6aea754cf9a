from . import geo_loading, semi_transforms  # noqa: F401
