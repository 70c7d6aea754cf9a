"""Teacher-student val/test loops: both networks scored in one run."""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.runner import TestLoop as PlainTestLoop

import s5_mm  # noqa: F401
from s5_mm.testing import identity_segmentor_cfg

CLASSES = ('a', 'b', 'c')


def loop_cfg(root, work_dir, teacher, predict_on='student'):
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')]
    loader = dict(
        batch_size=1, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(type='BaseSegDataset', data_root=str(root),
                     metainfo=dict(classes=CLASSES), img_suffix='.png',
                     seg_map_suffix='.png',
                     data_prefix=dict(img_path='img', seg_map_path='ann'),
                     pipeline=pipeline))
    evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
    return Config(dict(
        default_scope='mmseg',
        work_dir=str(work_dir),
        model=dict(type='S4PSegmentor',
                   segmentor=identity_segmentor_cfg(num_classes=3),
                   semi_train_cfg=dict(teacher=teacher),
                   semi_test_cfg=dict(predict_on=predict_on)),
        val_dataloader=loader, val_evaluator=evaluator,
        val_cfg=dict(type='S4PTeacherStudentValLoop'),
        test_dataloader=loader, test_evaluator=evaluator,
        test_cfg=dict(type='S4PTeacherStudentTestLoop')))


def predict_class(net, cls):
    """Constant logits: ``net`` predicts ``cls`` everywhere."""
    head = net.decode_head.conv_seg
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[cls] = 5.0


def test_test_loop_scores_teacher_and_student(toy_seg_data, tmp_path):
    runner = Runner.from_cfg(
        loop_cfg(toy_seg_data, tmp_path, 'ema', predict_on='teacher'))
    model = runner.model
    predict_class(model.student, 0)
    predict_class(model.teacher, 2)
    metrics = runner.test()
    # Every toy label map (s5_mm.testing.toy_label) has 84 / 156 / 160 of
    # 400 pixels in classes 0 / 1 / 2. All class 2: IoU 160/400 for it, 0
    # for the others; all class 0: 84/400.
    assert metrics['teacher/mIoU'] == pytest.approx(40.0 / 3, abs=0.01)
    assert metrics['teacher/aAcc'] == pytest.approx(40.0)
    assert metrics['student/mIoU'] == pytest.approx(21.0 / 3, abs=0.01)
    assert metrics['student/aAcc'] == pytest.approx(21.0)
    assert not any('/' not in k for k in metrics)
    assert model.semi_test_cfg['predict_on'] == 'teacher'  # restored
    # The student's figures are those a plain TestLoop gives it.
    model.semi_test_cfg['predict_on'] = 'student'
    plain = PlainTestLoop(runner, runner.test_loop.dataloader,
                     runner.test_loop.evaluator).run()
    for k, v in plain.items():
        assert metrics[f'student/{k}'] == v, k
    val = runner.val()
    assert val == metrics


def test_self_teacher_scores_the_student_alone(toy_seg_data, tmp_path):
    runner = Runner.from_cfg(loop_cfg(toy_seg_data, tmp_path, 'self'))
    predict_class(runner.model.student, 2)
    metrics = runner.test()
    assert set(metrics) == {'student/aAcc', 'student/mIoU', 'student/mAcc'}
    assert metrics['student/aAcc'] == pytest.approx(40.0)


def test_plain_segmentor_is_refused(toy_seg_data, tmp_path):
    cfg = loop_cfg(toy_seg_data, tmp_path, 'self')
    cfg.model = identity_segmentor_cfg(num_classes=3)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(TypeError, match='S4PTeacherStudentTestLoop.*'
                       'EncoderDecoder'):
        runner.test()
