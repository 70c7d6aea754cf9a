from .multi_head import MultiHeadEncoderDecoder
from .semi_segmentor import PseudoLabels, S4PSegmentor

__all__ = ['MultiHeadEncoderDecoder', 'PseudoLabels', 'S4PSegmentor']
