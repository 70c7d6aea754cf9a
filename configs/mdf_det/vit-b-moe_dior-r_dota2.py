# S5 MoE-MDF oriented detection, ViT-B (S5_METHOD.md section 4; paper Table
# 1: DIOR-R 72.95, DOTA-v2 57.20 mAP): one MoE ViT-B (2 experts, p = 256:
# DIOR-R, DOTA-v2.0) + simple feature pyramid, per dataset its own FPN,
# oriented RPN and rotated RoI head (Oriented R-CNN, le90); 138.3 M
# parameters. 1024 input, 12 epochs, AdamW 1e-4, wd 0.05, steps at 8 and 11,
# 500-iteration warm-up, grad clip 35, 2 + 2 images per GPU. Launch:
# tools/dist_train.sh <this> 8
_base_ = [
    '../_base_/models/s5_moe_oriented_rcnn_vit.py',
    '../_base_/datasets/dior-r_dota2.py',
    '../_base_/schedules/schedule_mdf-det_12e.py',
    '../_base_/default_runtime_det.py',
]
# The S4P checkpoint (configs/s4p/): its student's ViT; the plain fc2 of
# every block is split into the shared part and one copy per expert.
pretrained = 'pretrain/s4p_vit-b_rs4p1m.pth'
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                                prefix='student.backbone.')),
    loss_weights=dict(dior=1.0, dota=1.0))
# the 8-GPU total (2 datasets x 2 images per GPU): auto_scale_lr.enable=True
# scales the lr to another total (docs/scaling.md)
auto_scale_lr = dict(enable=False, base_batch_size=8 * 4)
