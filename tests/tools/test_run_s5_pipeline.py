"""tools/run_s5_pipeline.py end to end with a few steps per stage: every
stage's outputs, skip on a re-run, --from, the report against the metrics,
the HTML in a headless Chromium; and the --tensorboard switch."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from s5_mm.testing import load_tool

STAGES = ('scoring', 'selection', 's4p', 'mdf', 'evaluation')
CHECKPOINTS = dict(scoring='scoring/iter_3.pth', s4p='s4p/iter_3.pth',
                   mdf='mdf/iter_3.pth')


def _run(repo_root, work, data, src, *extra):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, 'tools/run_s5_pipeline.py', '--work-dir', str(work),
        '--data-root', str(data), '--src', str(src), '--no-fetch',
        '--scoring-iters', '3', '--s4p-iters', '3', '--mdf-iters', '3',
        '--pictures', '2', *extra
    ], cwd=repo_root, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def _mtimes(work):
    return {k: (work / v).stat().st_mtime_ns for k, v in CHECKPOINTS.items()}


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory, repo_root, shared_data):
    """One pipeline run, then a plain re-run and a --from mdf re-run."""
    tmp = tmp_path_factory.mktemp('s5_pipeline')
    work, data = tmp / 'work', tmp / 'data'
    src = shared_data / 'landcover_nc'
    first = _run(repo_root, work, data, src)
    t_first = _mtimes(work)
    report_first = (work / 'report.md').read_text()
    rerun = _run(repo_root, work, data, src)
    t_rerun = _mtimes(work)
    from_mdf = _run(repo_root, work, data, src, '--from', 'mdf')
    return dict(work=work, src=src, first=first, rerun=rerun,
                from_mdf=from_mdf, t_first=t_first, t_rerun=t_rerun,
                t_from=_mtimes(work), report_first=report_first)


def _stage(work, stage):
    return json.loads((work / stage / 'stage.json').read_text())['result']


def test_every_stage_writes_its_outputs(pipeline):
    import rasterio
    work = pipeline['work']
    out = pipeline['first']
    for k, stage in enumerate(STAGES, 1):
        # progress and one result line per stage
        assert f'[{k}/5] {stage}: running' in out
        assert len(re.findall(rf'^\[{k}/5\] {stage}: (?!running)', out,
                              re.M)) == 1
        assert (work / stage / 'stage.json').is_file()
    for ckpt in CHECKPOINTS.values():
        assert (work / ckpt).stat().st_size > 100_000
    sel = _stage(work, 'selection')
    lines = [ln for ln in Path(sel['selected_list']).read_text().splitlines()
             if ln and not ln.startswith('#')]
    # half of the 89 unlabelled tiles, each a tile of the pool
    assert sel['pool'] == 89 and sel['budget'] == 44
    assert len(lines) == sel['selected'] == 44
    assert all(ln.split()[0].endswith('.tif') for ln in lines)
    # S4P trained on exactly the selected tiles
    s4p_cfg = (work / 's4p/config.py').read_text()
    assert sel['selected_list'] in s4p_cfg
    # MoE-MDF started from the S4P checkpoint
    assert _stage(work, 's4p')['checkpoint'] in (work /
                                                 'mdf/config.py').read_text()
    # the scene map is georeferenced like the input bands
    scene = _stage(work, 'evaluation')['scene']
    with rasterio.open(scene['classes']) as m, \
            rasterio.open(pipeline['src'] / 'lsat7_2000_10.tif') as b:
        assert m.crs == b.crs and m.transform == b.transform
        assert (m.width, m.height) == (b.width, b.height)
        cls = m.read(1)
    assert set(np.unique(cls)) <= set(range(7)) | {255}
    assert (cls < 7).mean() > 0.5


def test_rerun_skips_and_from_reruns_the_later_stages(pipeline):
    rerun, from_mdf = pipeline['rerun'], pipeline['from_mdf']
    for stage in STAGES:
        assert re.search(rf'^\[\d/5\] {stage}: skipped, outputs exist',
                         rerun, re.M), rerun
    assert 'ran: nothing' in rerun and 'running' not in rerun
    assert pipeline['t_rerun'] == pipeline['t_first']  # nothing retrained
    for stage in ('scoring', 'selection', 's4p'):
        assert re.search(rf'{stage}: skipped', from_mdf)
    assert 'mdf: running (--from mdf)' in from_mdf
    assert 'evaluation: running (an earlier stage ran)' in from_mdf
    assert 'ran: mdf, evaluation' in from_mdf
    t0, t1 = pipeline['t_first'], pipeline['t_from']
    assert t1['scoring'] == t0['scoring'] and t1['s4p'] == t0['s4p']
    assert t1['mdf'] > t0['mdf']


def test_changed_settings_rerun_the_stage(pipeline):
    pipe = load_tool('run_s5_pipeline.py')
    args = pipe.parse_args(['--work-dir', str(pipeline['work']),
                            '--data-root', str(pipeline['work'].parent /
                                               'data'),
                            '--scoring-iters', '3', '--s4p-iters', '3',
                            '--mdf-iters', '3', '--pictures', '2'])
    p = pipe.Pipeline(args)
    assert all(p.must_run(s) is None for s in STAGES)
    p.args.s4p_iters = 4
    assert p.must_run('scoring') is None
    assert p.must_run('s4p') == 'settings changed'
    assert p.must_run('evaluation') == 'settings changed'


def test_report_values_are_the_stage_metrics(pipeline):
    work = pipeline['work']
    metrics = json.loads((work / 'metrics.json').read_text())
    sc, s4, md = (_stage(work, s) for s in ('scoring', 's4p', 'mdf'))
    ev = _stage(work, 'evaluation')
    table = {(r['stage'], r['model'], r['metric']): (r['heldout'], r['test'])
             for r in metrics['table']}
    rows = list(table.values())
    assert rows[0] == (sc['metrics']['mIoU'], ev['test_mIoU']['scoring'])
    assert rows[1] == (s4['metrics']['student/mIoU'], ev['test_mIoU']['s4p'])
    assert rows[2] == (None, md['metrics']['lc7/mIoU'])
    assert rows[3] == (None, md['metrics']['lc3/mIoU'])
    assert rows[4] == (None, md['metrics']['lc3/mFscore'])
    # the markdown table shows exactly these numbers
    report = (work / 'report.md').read_text()
    md_rows = [ln for ln in report.splitlines()
               if ln.startswith('| 1 ') or ln.startswith('| 3 ')
               or ln.startswith('| 4 ')]
    assert len(md_rows) == 5
    for line, r in zip(md_rows, metrics['table']):
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert cells[:3] == [r['stage'], r['model'], r['metric']]
        for cell, v in zip(cells[3:], (r['heldout'], r['test'])):
            assert cell == ('-' if v is None else f'{v:.2f}')
    gain = s4['metrics']['student/mIoU'] - sc['metrics']['mIoU']
    assert ('S4P beats' in report) == (gain > 0)
    assert ('does NOT beat' in report) == (gain <= 0)


def test_paired_scores_are_the_test_metrics(pipeline):
    """The per-tile confusions behind the intervals give back each model's
    metric from its own test run: same tiles, pixels and protocol."""
    work = pipeline['work']
    md, ev = _stage(work, 'mdf'), _stage(work, 'evaluation')
    scores = ev['paired']['scores']
    tol = 5.1e-3  # MMSeg rounds its metrics to 2 decimals
    assert scores['supervised'] == pytest.approx(ev['test_mIoU']['scoring'],
                                                 abs=tol)
    assert scores['s4p'] == pytest.approx(ev['test_mIoU']['s4p'], abs=tol)
    assert scores['moe_lc7'] == pytest.approx(md['metrics']['lc7/mIoU'],
                                              abs=tol)
    assert scores['moe_lc3'] == pytest.approx(md['metrics']['lc3/mFscore'],
                                              abs=tol)
    conf = np.load(ev['paired']['confusions'])
    assert len(conf['paths']) == ev['paired']['tiles'] == md['split']['test']
    # merging keeps the pixels: the merged matrix of S4P is its 7-class
    # matrix summed by the class map, rows and columns
    lut = np.array([0, 1, 1, 1, 1, 2, 0])
    s7 = conf['s4p'].sum(0)
    merged = np.zeros((3, 3), np.int64)
    np.add.at(merged, (lut[:, None].repeat(7, 1), lut[None].repeat(7, 0)),
              s7)
    assert (merged == conf['s4p_merged'].sum(0)).all()
    for key, g in ev['paired']['gains'].items():
        assert g['low'] <= g['delta'] <= g['high'], key
        assert g['tiles'] == len(conf['paths'])
    report = (work / 'report.md').read_text()
    g = ev['paired']['gains']['moe_lc3_vs_s4p_merged']
    assert (f'| MoE-MDF lc3 - S4P merged to lc3 | mF1 | {g["a"]:.2f} | '
            f'{g["b"]:.2f} | {g["delta"]:+.2f} | [{g["low"]:+.2f}, '
            f'{g["high"]:+.2f}] |') in report


def test_seeds_report(pipeline, repo_root, tmp_path):
    """--seeds 0 1: seed 0 is the module's run (copied, so skipped), seed
    1 runs; the report holds both seeds and their mean."""
    work = tmp_path / 'seeds'
    shutil.copytree(pipeline['work'], work / 'seed_0')
    out = _run(repo_root, work, pipeline['work'].parent / 'data',
               pipeline['src'], '--seeds', '0', '1')
    assert out.count('ran: nothing') == 1  # seed 0
    metrics = json.loads((work / 'metrics.json').read_text())
    assert metrics['seeds'] == [0, 1]
    s0 = _stage(work / 'seed_0', 'evaluation')['paired']
    s1 = _stage(work / 'seed_1', 'evaluation')['paired']
    col = metrics['columns'].index('MoE-MDF lc7 mIoU')
    assert metrics['per_seed'][0][col] == s0['scores']['moe_lc7']
    assert metrics['per_seed'][1][col] == s1['scores']['moe_lc7']
    assert metrics['mean'][col]['mean'] == pytest.approx(
        (s0['scores']['moe_lc7'] + s1['scores']['moe_lc7']) / 2)
    g = metrics['gains']['moe_lc7_vs_s4p']
    assert g['delta'] == pytest.approx(
        (s0['gains']['moe_lc7_vs_s4p']['delta'] +
         s1['gains']['moe_lc7_vs_s4p']['delta']) / 2)
    assert g['runs'] == 2 and g['low'] <= g['delta'] <= g['high']
    assert '| mean +- sd |' in (work / 'report.md').read_text()


def test_report_references_only_existing_readable_pictures(pipeline):
    from PIL import Image
    work = pipeline['work']
    report = (work / 'report.md').read_text()
    refs = re.findall(r'!\[[^\]]*\]\(([^)]+)\)', report)
    page = (work / 'index.html').read_text()
    srcs = re.findall(r'<img src="([^"]+)"', page)
    # selection plot + 3 per unlabelled tile + 7 per held-out tile + scene
    assert len(refs) == len(srcs) == 1 + 2 * 3 + 2 * 7 + 1
    assert sorted(refs) == sorted(srcs)
    for ref in refs:
        assert not Path(ref).is_absolute(), ref
        with Image.open(work / ref) as im:
            im.load()
            size = im.size
        if '/pictures/' in ref:  # 32 px tiles drawn readable
            assert min(size) >= 192, (ref, size)
    assert 'selection/summary.png' in refs
    with Image.open(work / 'evaluation/scene/landcover_pred_legend.png') \
            as im, Image.open(work / 'evaluation/scene/landcover_pred.png') \
            as ql:
        # quick-look + legend column
        assert im.width > ql.width and im.height >= ql.height


def _chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip('no chromium (tools/setup_env.sh installs it with apt)')


def _browser(exe, url, *flags):
    return subprocess.run(
        [exe, '--headless', '--no-sandbox', '--disable-gpu',
         '--allow-file-access-from-files', *flags, url],
        capture_output=True, text=True, timeout=120)


def _loaded_images(exe, html):
    proc = _browser(exe, html.as_uri(), '--virtual-time-budget=5000',
                    '--dump-dom')
    m = re.search(r'data-images="(\d+)/(\d+)"', proc.stdout)
    assert m, proc.stdout[-2000:] + proc.stderr[-2000:]
    return int(m.group(1)), int(m.group(2))


def test_html_renders_with_every_image_in_chromium(pipeline, tmp_path):
    from PIL import Image
    exe = _chromium()
    work = pipeline['work']
    ok, total = _loaded_images(exe, work / 'index.html')
    assert ok == total == 22
    # the check sees a missing picture
    broken = work / 'broken.html'
    broken.write_text((work / 'index.html').read_text().replace(
        'selection/summary.png', 'selection/missing.png'))
    try:
        assert _loaded_images(exe, broken) == (21, 22)
    finally:
        broken.unlink()
    shot = tmp_path / 'shot.png'
    proc = _browser(exe, (work / 'index.html').as_uri(),
                    f'--screenshot={shot}', '--window-size=1400,2000',
                    '--virtual-time-budget=5000')
    assert shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as im:
        px = np.asarray(im.convert('RGB'))
    # not blank: the pictures put many colours on the page
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 200


def test_tensorboard_switch(tmp_path, repo_root):
    import importlib.util

    from s5_mm.utils.tensorboard import enable_tensorboard
    train = load_tool('train.py')
    argv = [str(repo_root / 'configs/demo/s4p_vit-tiny_landcover.py'),
            '--work-dir', str(tmp_path), '--tensorboard']
    if importlib.util.find_spec('tensorboard') is None:
        with pytest.raises(ImportError, match='optional.txt'):
            train.build_train_cfg(train.parse_args(argv))
        return
    from mmengine.config import Config
    cfg = Config.fromfile(argv[0])
    enable_tensorboard(cfg)
    enable_tensorboard(cfg)  # once only
    types = [b['type'] for b in cfg.visualizer.vis_backends]
    assert types == ['LocalVisBackend', 'TensorboardVisBackend']
    # the config's visualizer now writes TensorBoard events
    from mmengine.registry import VISUALIZERS, init_default_scope
    init_default_scope('mmseg')
    vis = VISUALIZERS.build(dict(cfg.visualizer, name='tb_switch_test',
                                 save_dir=str(tmp_path / 'vis')))
    vis.add_scalars({'train/pl_share/forest': 0.25}, step=1)
    vis.close()
    assert list((tmp_path / 'vis').rglob('events.out.tfevents*'))
