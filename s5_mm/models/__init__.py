from . import backbones, data_preprocessors, layers, necks, segmentors  # noqa: F401,E501
