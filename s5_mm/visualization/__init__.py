from .display import to_display_rgb

__all__ = ['to_display_rgb']
