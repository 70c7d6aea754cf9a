"""One switch for TensorBoard logging in any config."""
import importlib.util

TB_BACKEND = 'TensorboardVisBackend'


def enable_tensorboard(cfg):
    """Add mmengine's ``TensorboardVisBackend`` to the config's visualizer
    (in place; once). Every scalar the LoggerHook logs then also goes to
    ``<work_dir>/<timestamp>/vis_data/`` as TensorBoard events: training
    losses (S4P: ``sup``/``unsup`` losses, ``unsup.mask_ratio``,
    ``pl_share/<class>``), learning rate and the validation metrics (MDF:
    per dataset, ``lc7/mIoU`` ...). Fails naming the package when
    tensorboard is not installed (``requirements/optional.txt``)."""
    if importlib.util.find_spec('tensorboard') is None:
        raise ImportError('--tensorboard needs the tensorboard package: pip '
                          'install -r requirements/optional.txt')
    vis = cfg.get('visualizer')
    if vis is None:
        raise KeyError('--tensorboard: the config has no visualizer to add '
                       'the TensorBoard backend to')
    backends = list(vis.get('vis_backends') or [])
    if not any(str(b.get('type', '')).split('.')[-1] == TB_BACKEND
               for b in backends):
        backends.append(dict(type=TB_BACKEND))
    vis['vis_backends'] = backends
    return cfg
