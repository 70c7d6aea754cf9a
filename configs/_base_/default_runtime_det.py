# Runtime of the oriented detectors: default_runtime.py in MMRotate's scope
# (MMDet types as 'mmdet.*'), with MMRotate's rotated-box visualizer.
_base_ = ['./default_runtime.py']
default_scope = 'mmrotate'
env_cfg = dict(cudnn_benchmark=False)  # image sizes vary (DIOR-R, patches)
visualizer = dict(type='RotLocalVisualizer')
# No test-time augmentation for rotated boxes here (SegTTAModel is MMSeg's).
tta_model = None
