# Oriented R-CNN (le90) with the S5 ViT-B on DIOR-R alone (single-dataset
# fine-tuning, S5_METHOD.md sections 3-5): ViT-B + simple feature pyramid +
# FPN, oriented RPN, rotated RoI head, 20 classes; 111.2 M parameters. The
# schedule of the MoE-MDF detector on epochs (12, AdamW 1e-4, wd 0.05, steps
# at 8 and 11, 500-iteration warm-up, clip 35), 2 images per GPU.
_base_ = [
    '../_base_/models/s5_oriented_rcnn_vit.py',
    '../_base_/datasets/dior-r.py',
    '../_base_/schedules/schedule_det_12e.py',
    '../_base_/default_runtime_det.py',
]
pretrained = 'pretrain/s4p_vit-b_rs4p1m.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                                prefix='student.backbone.')))
# the 8-GPU total (2 images per GPU): auto_scale_lr.enable=True
# scales the lr to another total (docs/scaling.md)
auto_scale_lr = dict(enable=False, base_batch_size=8 * 2)
