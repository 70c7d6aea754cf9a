"""S4PSegmentor: loss math, CutMix partners, padding, checkpoints."""
import math

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import s5_mm  # noqa: F401
from s5_mm.models.segmentors import PseudoLabels, S4PSegmentor
from s5_mm.models.segmentors import semi_segmentor as semi_mod
from s5_mm.models.utils.cutmix import boxes_to_masks, sample_cutmix_boxes
from s5_mm.testing import identity_segmentor_cfg, tiny_segmentor_cfg

# the autouse fixture in tests/conftest.py sets it before each test
DEFAULT_SCOPE = 'mmseg'


def conv_segmentor():
    return tiny_segmentor_cfg(num_classes=3, mean=0.0, std=1.0,
                              downsample=True)


def build_identity_model(**train_cfg):
    model = S4PSegmentor(
        segmentor=identity_segmentor_cfg(), semi_train_cfg=train_cfg)
    with torch.no_grad():
        conv = model.student.decode_head.conv_seg
        conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        conv.bias.zero_()
    return model


def samples(n, h, w, masks=None):
    out = []
    for i in range(n):
        ds = SegDataSample(
            metainfo=dict(img_shape=(h, w), pad_shape=(h, w),
                          ori_shape=(h, w)))
        if masks is not None:
            ds.gt_sem_seg = PixelData(data=masks[i].view(1, h, w).long())
        out.append(ds)
    return out


def img(pixels):
    """(H, W, C) nested lists -> (C, H, W) tensor."""
    return torch.tensor(pixels, dtype=torch.float32).permute(2, 0, 1)


def golden_batch():
    """Hand-made 2x2 images whose pixels are the 2-class logits (no tie
    in a view that is argmaxed: weak and labelled)."""
    weak = torch.stack([
        img([[[4, 0], [0, 4]], [[1, 0], [5, 0]]]),
        img([[[2, 0], [3, 0]], [[0, 6], [0.5, 0]]]),
    ])
    strong = torch.stack([
        img([[[1, 0], [0, 2]], [[2, 0], [0, 3]]]),
        img([[[0, 0], [1, 1]], [[0, -1], [2, 0]]]),
    ])
    pad = torch.tensor([[[0, 0], [0, 255]], [[255, 0], [0, 0]]])
    sup = img([[[3, 0], [0.5, 0]], [[1, 2], [0, 0.5]]])[None]
    sup_label = torch.tensor([[[0, 1], [1, 255]]])
    inputs = dict(sup=sup, unsup_teacher=weak, unsup_student=strong)
    data_samples = dict(
        sup=samples(1, 2, 2, sup_label),
        unsup_teacher=samples(2, 2, 2, pad),
        unsup_student=samples(2, 2, 2, pad))
    return inputs, data_samples


def fixed_boxes(*args, **kwargs):
    # Sample 0 takes the left column of sample 1; sample 1 is not mixed.
    boxes = torch.tensor([[0, 0, 2, 1], [0, 0, 1, 1]])
    return boxes, torch.tensor([True, False]), torch.tensor([1, 0])


def test_golden_loss(monkeypatch):
    monkeypatch.setattr(semi_mod, 'sample_cutmix_boxes', fixed_boxes)
    model = build_identity_model(cutmix_prob=1.0)
    model.train()
    inputs, data_samples = golden_batch()
    losses = model.loss(inputs, data_samples)

    def ce(logits, target):  # -log softmax
        return math.log(sum(math.exp(v) for v in logits)) - logits[target]

    # Mixed sample 0: (0,0) from sample 1 (padding), (0,1) own pl 1 conf
    # sigmoid(4), (1,0) from sample 1 pl 1 conf sigmoid(6), (1,1) padding.
    # Sample 1: (0,0) padding, (0,1) pl 0 conf sigmoid(3) = 0.9526,
    # (1,0) pl 1 conf sigmoid(6), (1,1) pl 0 conf sigmoid(0.5), dropped.
    kept = [ce([0, 2], 1), ce([0, -1], 1), ce([1, 1], 0), ce([0, -1], 1)]
    n_valid = 2 + 3
    l_unsup = sum(kept) / n_valid
    assert losses['unsup_loss_ce'].item() == pytest.approx(
        0.5 * l_unsup, abs=1e-5)
    assert losses['unsup_mask_ratio'].item() == pytest.approx(4 / 5)
    # mmseg CE averages over all pixels, ignored ones counting 0.
    l_sup = (ce([3, 0], 0) + ce([0.5, 0], 1) + ce([1, 2], 1)) / 4
    assert losses['sup_loss_ce'].item() == pytest.approx(0.5 * l_sup,
                                                         abs=1e-5)
    # Confident non-padding weak-view pseudo-labels: class 0 at s0(0,0) and
    # s1(0,1), class 1 at s0(0,1) and s1(1,0).
    assert model.pop_pseudo_label_counts().tolist() == [2.0, 2.0]
    assert model.pl_class_counts.sum().item() == 0


def test_golden_without_cutmix_and_weights():
    model = build_identity_model(cutmix_prob=0.0, sup_weight=1.0,
                                 unsup_weight=2.0, conf_thresh=0.9)
    inputs, data_samples = golden_batch()
    losses = model.loss(inputs, data_samples)

    def ce(logits, target):
        return math.log(sum(math.exp(v) for v in logits)) - logits[target]

    # No mixing: s0 keeps (0,0) pl 0 and (0,1) pl 1 (conf >= 0.9); (1,0)
    # conf 0.73 dropped; (1,1) padding. s1: (0,1) conf 0.9526 pl 0 and
    # (1,0) pl 1 kept; (1,1) 0.62 dropped; (0,0) padding. 3 + 3 valid.
    kept = [ce([1, 0], 0), ce([0, 2], 1), ce([1, 1], 0), ce([0, -1], 1)]
    assert losses['unsup_loss_ce'].item() == pytest.approx(
        2.0 * sum(kept) / 6, abs=1e-5)
    assert losses['unsup_mask_ratio'].item() == pytest.approx(4 / 6)


def test_loss_keys_and_weights_apply_to_losses_only():
    inputs, data_samples = golden_batch()
    half = build_identity_model(cutmix_prob=0.0, unsup_weight=0.25)
    full = build_identity_model(cutmix_prob=0.0, sup_weight=1.0,
                                unsup_weight=1.0)
    a = half.loss(inputs, data_samples)
    b = full.loss(inputs, data_samples)
    # The order is the order parse_losses sums in: keep it.
    assert list(a) == ['sup_loss_ce', 'sup_acc_seg', 'unsup_loss_ce',
                       'unsup_mask_ratio']
    assert torch.equal(a['sup_loss_ce'], b['sup_loss_ce'] * 0.5)
    assert torch.equal(a['unsup_loss_ce'], b['unsup_loss_ce'] * 0.25)
    assert torch.equal(a['sup_acc_seg'], b['sup_acc_seg'])
    assert torch.equal(a['unsup_mask_ratio'], b['unsup_mask_ratio'])
    # mmseg's accuracy of the one labelled image: 2 of 3 pixels right.
    assert a['sup_acc_seg'].item() == pytest.approx(200 / 3)


def test_tau_map_keeps_what_the_float_comparison_kept():
    """tau as a float32 map: ``conf == float32(tau)`` is kept, as it was
    when ``conf >= tau`` compared against the python float."""
    model = build_identity_model(conf_thresh=0.95)
    at_tau = torch.tensor(0.95, dtype=torch.float32)
    below = torch.nextafter(at_tau, torch.tensor(0.0))
    conf = torch.stack([at_tau, below, torch.tensor(1.0),
                        torch.tensor(0.5)]).view(1, 2, 2)
    plabel = torch.zeros(1, 2, 2, dtype=torch.long)
    pad = torch.zeros(1, 2, 2, dtype=torch.bool)
    thresh = model.pixel_thresholds(conf, plabel, pad)
    assert thresh.shape == conf.shape and thresh.dtype == torch.float32
    pseudo = PseudoLabels(plabel, conf, pad, thresh)
    assert torch.equal(pseudo.keep, conf >= 0.95)
    assert pseudo.keep.flatten().tolist() == [True, False, True, False]


def test_loss_steps_are_overridable():
    """loss() goes through mix(): a subclass without mixing equals
    cutmix_prob=0."""

    class NoMix(S4PSegmentor):

        def mix(self, strong, pseudo, it):
            return strong, pseudo

    inputs, data_samples = golden_batch()
    model = build_identity_model(cutmix_prob=0.0)
    no_mix = NoMix(segmentor=identity_segmentor_cfg(),
                   semi_train_cfg=dict(cutmix_prob=1.0))
    no_mix.load_state_dict(model.state_dict())
    want = model.loss(inputs, data_samples)
    got = no_mix.loss(inputs, data_samples)
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), k


def test_class_thresholds_by_hand():
    model = build_identity_model(class_keep_ratio=0.6)
    conf = torch.tensor([[[0.99, 0.6, 0.7, 0.5], [0.8, 0.96, 0.3, 0.9]]])
    plabel = torch.tensor([[[0, 1, 1, 0], [1, 0, 0, 0]]])
    pad = torch.zeros(1, 2, 4, dtype=torch.bool)
    pad[0, 1, 3] = True
    # Class 0: non-padding 0.99, 0.96, 0.5, 0.3 -> the ceil(0.6 * 4) = 3rd
    # is 0.5 (counting the padded 0.9 would give 0.9). Class 1: 0.8, 0.7,
    # 0.6 -> the 2nd, 0.7.
    assert model.class_thresholds(conf, plabel, pad).tolist() == \
        pytest.approx([0.5, 0.7])
    # Above tau stays at tau; a class nobody predicts gets tau.
    assert model.class_thresholds(torch.full((1, 2, 2), 0.99),
                                  torch.zeros(1, 2, 2, dtype=torch.long),
                                  torch.zeros(1, 2, 2, dtype=torch.bool)
                                  ).tolist() == pytest.approx([0.95, 0.95])


def test_golden_loss_with_class_keep_ratio():
    model = build_identity_model(cutmix_prob=0.0, class_keep_ratio=0.75)
    inputs, data_samples = golden_batch()
    losses = model.loss(inputs, data_samples)

    def ce(logits, target):
        return math.log(sum(math.exp(v) for v in logits)) - logits[target]

    # Class 0 (non-padding): s0(0,0) 0.982, s1(0,1) 0.9526, s0(1,0) 0.731,
    # s1(1,1) sigmoid(0.5) = 0.62 -> the ceil(0.75 * 4) = 3rd: 0.731, so
    # s0(1,0) joins, s1(1,1) does not; class 1: 0.9975, 0.982 -> 2nd,
    # capped at tau 0.95.
    kept = [ce([1, 0], 0), ce([0, 2], 1), ce([2, 0], 0), ce([1, 1], 0),
            ce([0, -1], 1)]
    assert losses['unsup_loss_ce'].item() == pytest.approx(
        0.5 * sum(kept) / 6, abs=1e-5)
    assert losses['unsup_mask_ratio'].item() == pytest.approx(5 / 6)
    assert model.pop_pseudo_label_counts().tolist() == [3.0, 2.0]
    with pytest.raises(ValueError, match='class_keep_ratio'):
        build_identity_model(class_keep_ratio=0.0)


def test_class_keep_ratio_one_keeps_every_pixel_through_cutmix(monkeypatch):
    # r = 1: each class's threshold is its least confident pixel, so every
    # non-padding pixel is kept, as with tau = 0, CutMix included.
    monkeypatch.setattr(semi_mod, 'sample_cutmix_boxes', fixed_boxes)
    inputs, data_samples = golden_batch()
    balanced = build_identity_model(cutmix_prob=1.0, class_keep_ratio=1.0)
    plain = build_identity_model(cutmix_prob=1.0, conf_thresh=0.0)
    got = balanced.loss(inputs, data_samples)
    want = plain.loss(inputs, data_samples)
    assert got['unsup_mask_ratio'].item() == pytest.approx(1.0)
    assert got['unsup_loss_ce'].item() == pytest.approx(
        want['unsup_loss_ce'].item(), abs=1e-6)


def test_unsup_start_iter_skips_unsup_and_teacher(monkeypatch):
    model = build_identity_model(unsup_start_iter=5)
    calls = []
    monkeypatch.setattr(model, '_pseudo_label_logits',
                        lambda *a: calls.append(1))
    inputs, data_samples = golden_batch()
    losses = model.loss(inputs, data_samples)
    assert losses['unsup_loss_ce'].item() == 0
    assert not losses['unsup_loss_ce'].requires_grad
    assert calls == []
    assert losses['sup_loss_ce'].requires_grad


def test_cutmix_partner_is_a_different_image():
    b, h, w = 6, 16, 16
    # Sample i is filled with value i, in image, label and confidence.
    value = torch.arange(b).view(b, 1, 1).expand(b, h, w)
    images = value[:, None].float().repeat(1, 3, 1, 1)
    model = build_identity_model(cutmix_prob=1.0)
    pseudo = PseudoLabels(value.clone(), value.float(), value == 0,
                          value.float() + 0.5)
    mixed, (plabel, conf, pad, thresh) = model.mix(images, pseudo, 0)
    gen_boxes = sample_cutmix_boxes(b, h, w, model._generator(0), 1.0,
                                    (0.02, 0.4), (0.3, 3.3))
    masks = boxes_to_masks(*gen_boxes[:2], h, w, torch.device('cpu'))
    for i in range(b):
        inside = masks[i]
        assert inside.any()
        src = mixed[i, 0][inside]
        assert (src != i).all(), 'pasted from the same image'
        assert (src == gen_boxes[2][i]).all()
        assert (mixed[i, 0][~inside] == i).all()
        # the same boxes move labels, confidences and padding
        assert torch.equal(plabel[i].float(), mixed[i, 0])
        assert torch.equal(conf[i], mixed[i, 0])
        assert torch.equal(pad[i], mixed[i, 0] == 0)
        assert torch.equal(thresh[i], mixed[i, 0] + 0.5)


def padded_batch(weak_fill, strong_fill, b=4, h=16, w=16):
    torch.manual_seed(0)
    weak = torch.randn(b, 3, h, w)
    strong = torch.randn(b, 3, h, w)
    pad = torch.zeros(b, h, w, dtype=torch.long)
    pad[:, 10:, :] = 255
    pad[:, :, 12:] = 255
    weak[:, :, 10:, :] = weak_fill
    weak[:, :, :, 12:] = weak_fill
    strong[:, :, 10:, :] = strong_fill
    strong[:, :, :, 12:] = strong_fill
    sup = torch.randn(2, 3, h, w)
    label = torch.randint(0, 3, (2, h, w))
    label[:, 8:] = 255
    sup_fill = strong_fill
    sup[:, :, 8:] = sup_fill
    return (dict(sup=sup, unsup_teacher=weak, unsup_student=strong),
            dict(sup=samples(2, h, w, label),
                 unsup_teacher=samples(b, h, w, pad),
                 unsup_student=samples(b, h, w, pad)))


def test_padding_never_contributes():
    """Values in padded pixels change neither the losses nor the gradients.

    A 1x1 head keeps pixels independent, so only padding could leak.
    """
    seg = identity_segmentor_cfg(num_classes=3)
    seg['decode_head'].update(in_channels=3, channels=3, num_classes=3)
    results = []
    for fill in (0.0, 50.0):
        torch.manual_seed(1)
        model = S4PSegmentor(segmentor=seg,
                             semi_train_cfg=dict(cutmix_prob=1.0,
                                                 conf_thresh=0.0, seed=3))
        inputs, data_samples = padded_batch(-fill, fill)
        losses = model.loss(inputs, data_samples)
        total = losses['sup_loss_ce'] + losses['unsup_loss_ce']
        total.backward()
        grad = model.student.decode_head.conv_seg.weight.grad.clone()
        results.append((losses, grad))
    (l0, g0), (l1, g1) = results
    for key in ('sup_loss_ce', 'unsup_loss_ce', 'unsup_mask_ratio'):
        assert torch.allclose(l0[key], l1[key], atol=1e-6), key
    assert l0['unsup_loss_ce'] > 0
    # 120 of 256 pixels per image are padding; conf_thresh 0 keeps the rest
    # (CutMix moves padding but the kept fraction of valid pixels is 1).
    assert l0['unsup_mask_ratio'].item() == pytest.approx(1.0)
    assert torch.allclose(g0, g1, atol=1e-6)


def test_padding_from_preprocessor_metainfo():
    model = build_identity_model()
    ds = SegDataSample(metainfo=dict(padding_size=(1, 2, 0, 3)))
    mask = model._padding_mask([ds], torch.zeros(1, 2, 6, 5))[0]
    expected = torch.zeros(6, 5, dtype=torch.bool)
    expected[:, :1] = True
    expected[:, 3:] = True
    expected[3:] = True
    assert torch.equal(mask, expected)


def test_self_teacher_runs_in_eval_mode_without_grad(monkeypatch):
    model = S4PSegmentor(segmentor=conv_segmentor())
    model.train()
    seen = {}
    orig = model.student.encode_decode

    def spy(x, metas):
        seen['training'] = model.student.training
        seen['grad'] = torch.is_grad_enabled()
        return orig(x, metas)

    monkeypatch.setattr(model.student, 'encode_decode', spy)
    b, h, w = 2, 16, 16
    inputs = dict(sup=torch.randn(2, 3, h, w),
                  unsup_teacher=torch.randn(b, 3, h, w),
                  unsup_student=torch.randn(b, 3, h, w))
    data_samples = dict(
        sup=samples(2, h, w, torch.randint(0, 3, (2, h, w))),
        unsup_teacher=samples(b, h, w, torch.zeros(b, h, w)),
        unsup_student=samples(b, h, w, torch.zeros(b, h, w)))
    bn = model.student.decode_head.conv_seg  # any param; check BN stats
    running = model.student.decode_head.convs[0].bn.running_mean.clone()
    losses = model.loss(inputs, data_samples)
    assert seen == dict(training=False, grad=False)
    assert model.student.training
    # BN statistics move once (student pass), not from the teacher pass.
    assert not torch.equal(running,
                           model.student.decode_head.convs[0].bn.running_mean)
    assert bn.weight.requires_grad and losses['unsup_loss_ce'].requires_grad


def test_ema_teacher_copy_then_momentum():
    model = S4PSegmentor(
        segmentor=conv_segmentor(),
        semi_train_cfg=dict(teacher='ema', ema_momentum=0.25))
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model._update_teacher(0)  # fresh run: teacher := student
    for t, s in zip(model.teacher.state_dict().values(),
                    model.student.state_dict().values()):
        assert torch.equal(t, s)
    before = [p.clone() for p in model.teacher.parameters()]
    with torch.no_grad():
        for p in model.student.parameters():
            p.add_(1.0)
    model._update_teacher(1)
    for b, t, s in zip(before, model.teacher.parameters(),
                       model.student.parameters()):
        assert torch.allclose(t, 0.75 * b + 0.25 * s)
    model.train()
    assert not model.teacher.training and model.student.training


def test_plain_checkpoint_loads_into_student_and_teacher():
    plain = MODELS.build(conv_segmentor())
    with torch.no_grad():
        for p in plain.parameters():
            p.normal_()
    model = S4PSegmentor(segmentor=conv_segmentor(),
                         semi_train_cfg=dict(teacher='ema'))
    model.load_state_dict(plain.state_dict(), strict=True)
    for k, v in plain.state_dict().items():
        assert torch.equal(model.student.state_dict()[k], v)
        assert torch.equal(model.teacher.state_dict()[k], v)


def test_student_weights_load_into_plain_segmentor(tmp_path):
    from mmengine.runner import save_checkpoint
    model = S4PSegmentor(segmentor=conv_segmentor(),
                         semi_train_cfg=dict(teacher='ema'))
    with torch.no_grad():
        for p in model.student.parameters():
            p.normal_()
    ckpt = tmp_path / 's4p.pth'
    save_checkpoint({'state_dict': model.state_dict()}, str(ckpt))
    cfg = conv_segmentor()
    cfg['init_cfg'] = dict(type='Pretrained', checkpoint=str(ckpt),
                           prefix='student.')
    plain = MODELS.build(cfg)
    plain.init_weights()
    for k, v in model.student.state_dict().items():
        assert torch.equal(plain.state_dict()[k], v), k


def test_predict_uses_configured_network():
    model = S4PSegmentor(
        segmentor=conv_segmentor(),
        semi_train_cfg=dict(teacher='ema'),
        semi_test_cfg=dict(predict_on='teacher'))
    with torch.no_grad():
        for p in model.teacher.parameters():
            p.zero_()
        model.teacher.decode_head.conv_seg.bias.copy_(
            torch.tensor([0.0, 0.0, 5.0]))
    model.eval()
    x = torch.randn(1, 3, 16, 16)
    out = model.predict(x, samples(1, 16, 16))
    assert (out[0].pred_sem_seg.data == 2).all()


def test_bad_config_and_inputs():
    with pytest.raises(ValueError, match='unknown semi_train_cfg'):
        S4PSegmentor(segmentor=identity_segmentor_cfg(),
                     semi_train_cfg=dict(conf_threshold=0.9))
    with pytest.raises(ValueError, match="'self' or 'ema'"):
        S4PSegmentor(segmentor=identity_segmentor_cfg(),
                     semi_train_cfg=dict(teacher='mean'))
    model = build_identity_model()
    inputs, data_samples = golden_batch()
    inputs['unsup_student'] = inputs['unsup_student'][:, :, :1]
    with pytest.raises(ValueError, match='strong views'):
        model.loss(inputs, data_samples)
    with pytest.raises(KeyError, match="'sup' branch"):
        model.loss(dict(unsup_teacher=inputs['unsup_teacher']), {})
