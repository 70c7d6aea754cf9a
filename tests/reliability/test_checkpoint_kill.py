"""SIGKILL while a checkpoint is written: every checkpoint under its final
name is complete, ``last_checkpoint`` names a complete file, and --resume
continues from it."""
import builtins
import multiprocessing
import os
import signal
import zipfile

import torch
from rel_utils import CONFIG, make_tiles, train_options

from s5_mm.testing import load_tool


def _train_and_die(kill_at, argv):
    """tools/train.py in a forked child that kills itself in the middle of
    writing the iteration-2 checkpoint (``'checkpoint'``: half its bytes
    are on disk) or the last_checkpoint file naming it (``'pointer'``:
    truncated to empty by ``open(..., 'w')``, nothing written yet)."""
    from mmengine.fileio.backends.local_backend import LocalBackend
    put = LocalBackend.put

    def put_and_die(self, obj, filepath):
        if kill_at.startswith('checkpoint') and 'iter_2' in str(filepath):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return put(self, obj, filepath)

    real_open = builtins.open

    class DieOnWrite:

        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            if 'iter_2' in text:
                os.kill(os.getpid(), signal.SIGKILL)
            return self.f.write(text)

    def open_and_die(file, mode='r', *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if kill_at == 'pointer' and 'w' in mode and \
                str(file).endswith('last_checkpoint'):
            return DieOnWrite(f)
        return f

    # the child's own copies of the modules: the parent is not patched
    LocalBackend.put = put_and_die
    builtins.open = open_and_die
    load_tool('train.py').main(argv)
    os._exit(0)


def complete(path):
    if not zipfile.is_zipfile(path):
        return False
    torch.load(path, map_location='cpu', weights_only=True)
    return True


def test_sigkill_while_saving_then_resume(tmp_path):
    """Killed while writing the iteration-2 checkpoint (also with
    max_keep_ckpts=1), or the last_checkpoint file naming it (one forked
    training process each)."""
    data = make_tiles(tmp_path / 'tiles', n_train=2, n_val=1)
    # forked: a real process to kill, without a fresh interpreter's imports
    fork = multiprocessing.get_context('fork')
    # keep1: with max_keep_ckpts=1 mmengine removed iter_1 before writing
    # iter_2, so the kill left no checkpoint at all
    cases = dict(checkpoint=[], pointer=[], checkpoint_keep1=[
        'default_hooks.checkpoint.max_keep_ckpts=1'])
    procs = {}
    for kill_at, extra in cases.items():
        argv = [CONFIG, '--work-dir', str(tmp_path / kill_at),
                '--cfg-options'] + train_options(data, 3, val=False) + extra
        procs[kill_at] = fork.Process(target=_train_and_die,
                                      args=(kill_at, argv))
        procs[kill_at].start()
        procs[kill_at].join(300)  # one at a time: 2 cores
    for kill_at, proc in procs.items():
        assert proc.exitcode == -signal.SIGKILL, proc.exitcode
        work = tmp_path / kill_at
        # every checkpoint under its final name is complete
        finals = sorted(work.glob('*.pth'))
        assert finals and all(complete(p) for p in finals), finals
        pointer = (work / 'last_checkpoint').read_text().strip()
        assert pointer == str(work / 'iter_1.pth') and complete(pointer)
        left = [p.name for p in work.glob('.*')]
        assert all('.partial-' in n for n in left)
        if kill_at.startswith('checkpoint'):
            assert any(n.startswith('.iter_2.pth.partial-') for n in left)
            assert finals == [work / 'iter_1.pth']
        # --resume continues from the complete checkpoint
        load_tool('train.py').main([CONFIG, '--work-dir', str(work),
                                    '--resume', '--cfg-options'] +
                                   train_options(data, 3, val=False) +
                                   cases[kill_at])
        ckpt = torch.load(work / 'iter_3.pth', map_location='cpu',
                          weights_only=True)
        assert ckpt['meta']['iter'] == 3
        state = next(iter(ckpt['optimizer']['state'].values()))
        assert int(state['step']) == 3
        assert not list(work.glob('.*'))  # the unfinished write was cleared
        assert (work / 'last_checkpoint').read_text() == str(
            work / 'iter_3.pth')
        if cases[kill_at]:  # the older ones removed after iter_3 was in
            assert sorted(work.glob('*.pth')) == [work / 'iter_3.pth']


