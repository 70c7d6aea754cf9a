from .vit import S5ViT

__all__ = ['S5ViT']
