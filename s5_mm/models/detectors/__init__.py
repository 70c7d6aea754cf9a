from .multi_head_two_stage import MultiHeadTwoStageDetector

__all__ = ['MultiHeadTwoStageDetector']
