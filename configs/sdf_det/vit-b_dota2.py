# Oriented R-CNN (le90) with the S5 ViT-B on DOTA-v2.0 alone: as
# ./vit-b_dior-r.py with the 18 DOTA-v2.0 classes and the 1024 / 200 patches
# (tools/dataset_converters/dota_split.py); test writes the server's
# Task1_<class>.txt files (merged patches).
_base_ = [
    '../_base_/models/s5_oriented_rcnn_vit.py',
    '../_base_/datasets/dota2.py',
    '../_base_/schedules/schedule_det_12e.py',
    '../_base_/default_runtime_det.py',
]
pretrained = 'pretrain/s4p_vit-b_rs4p1m.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                                prefix='student.backbone.')),
    roi_head=dict(bbox_head=dict(num_classes=18)))
# the 8-GPU total (2 images per GPU): auto_scale_lr.enable=True
# scales the lr to another total (docs/scaling.md)
auto_scale_lr = dict(enable=False, base_batch_size=8 * 2)
