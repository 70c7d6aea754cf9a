from .layer_decay import S5LayerDecayOptimizerConstructor, get_layer_id

__all__ = ['S5LayerDecayOptimizerConstructor', 'get_layer_id']
