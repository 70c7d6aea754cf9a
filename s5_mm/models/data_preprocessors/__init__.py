from .multiband import MultiBandSegDataPreProcessor

__all__ = ['MultiBandSegDataPreProcessor']
