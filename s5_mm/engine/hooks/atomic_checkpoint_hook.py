"""Checkpoints that appear complete or not at all."""
import contextlib
import glob
import os
import os.path as osp
import shutil

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from s5_mm.utils.atomic import commit, is_partial, partial_path

POINTER = 'last_checkpoint'


class _Runner:
    """The runner as CheckpointHook sees it, with ``save_checkpoint`` and
    ``work_dir`` replaced; everything else is the runner's."""

    def __init__(self, runner, save_checkpoint, work_dir):
        self.__dict__.update(_runner=runner, save_checkpoint=save_checkpoint,
                             work_dir=work_dir)

    def __getattr__(self, name):
        return getattr(self._runner, name)


class _DeferRemoval:
    """The hook's file backend, recording removals instead of doing them."""

    def __init__(self, backend, removals):
        self.__dict__.update(_backend=backend, _removals=removals)

    def remove(self, path):
        self._removals.append(path)

    def __getattr__(self, name):
        return getattr(self._backend, name)


# mmengine's root registry: found from the mmseg, mmdet and mmrotate scopes
@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` whose writes cannot leave a truncated
    file behind (a kill, a full disk, a node failure mid-write).

    Each checkpoint is written under a hidden temporary name in its folder
    and renamed when complete; ``last_checkpoint`` is replaced the same way,
    after the checkpoint it names is in place; a checkpoint to drop (over
    ``max_keep_ckpts``, or the previous best) is removed only after the new
    one is complete. Unfinished temporary files of an earlier killed run are
    removed at the start. Other storage backends than local files keep
    mmengine's behaviour. ``s5_mm.utils.build_runner`` uses this hook in
    place of ``CheckpointHook``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._depth = 0

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not (self._atomic_ok() and is_main_process()):
            return
        folders = {osp.abspath(self.out_dir), osp.abspath(runner.work_dir)}
        for folder in folders:
            for p in glob.glob(osp.join(folder, '.*')):
                if not is_partial(p):
                    continue
                runner.logger.warning(f'removing {p}, left by an unfinished '
                                      'checkpoint write of an earlier run')
                if osp.isdir(p):
                    shutil.rmtree(p)
                else:
                    os.remove(p)

    def _atomic_ok(self) -> bool:
        return isinstance(getattr(self, 'file_backend', None), LocalBackend)

    @contextlib.contextmanager
    def _atomic(self, runner):
        """Inside: ``(runner proxy, pointer file)`` for the super methods."""
        if self._depth or not self._atomic_ok():
            self._depth += 1
            try:
                yield runner, None
            finally:
                self._depth -= 1
            return
        removals, written = [], []
        backend = self.file_backend

        def save_checkpoint(out_dir, filename, *args, **kwargs):
            final = osp.join(out_dir, filename)
            tmp = partial_path(final)
            runner.save_checkpoint(out_dir, osp.basename(tmp), *args,
                                   **kwargs)
            if is_main_process():
                commit(tmp, final)
                written.append(osp.abspath(final))

        # CheckpointHook writes ``<work_dir>/last_checkpoint`` in place;
        # give it a staging folder and move the file over afterwards
        staging = partial_path(osp.join(runner.work_dir, POINTER))
        os.makedirs(staging, exist_ok=True)
        self.file_backend = _DeferRemoval(backend, removals)
        self._depth += 1
        try:
            yield _Runner(runner, save_checkpoint, staging), staging
            pointer = osp.join(staging, POINTER)
            if osp.isfile(pointer):
                commit(pointer, osp.join(runner.work_dir, POINTER))
            for path in removals:  # the new files are in place now
                if osp.abspath(path) in written:
                    continue
                if backend.isfile(path):
                    backend.remove(path)
                elif backend.isdir(path):
                    backend.rmtree(path)
        finally:
            self._depth -= 1
            self.file_backend = backend
            for leftover in glob.glob(osp.join(staging, '*')):
                os.remove(leftover)
            os.rmdir(staging)

    def _save_checkpoint_with_step(self, runner, step, meta):
        with self._atomic(runner) as (proxy, _):
            super()._save_checkpoint_with_step(proxy, step, meta)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with self._atomic(runner) as (proxy, _):
            super()._save_best_checkpoint(proxy, metrics)
