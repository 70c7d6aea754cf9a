from . import (backbones, data_preprocessors, detectors, layers,  # noqa: F401
               necks, segmentors)
