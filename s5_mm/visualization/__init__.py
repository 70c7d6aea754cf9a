from .geo_vis_hook import GeoSegVisualizationHook, to_display_rgb

__all__ = ['GeoSegVisualizationHook', 'to_display_rgb']
