from .multi_head import MultiHeadEncoderDecoder
from .semi_segmentor import S4PSegmentor

__all__ = ['MultiHeadEncoderDecoder', 'S4PSegmentor']
