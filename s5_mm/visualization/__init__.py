from .display import to_display_rgb
from .local_visualizer import S5SegLocalVisualizer

__all__ = ['S5SegLocalVisualizer', 'to_display_rgb']
