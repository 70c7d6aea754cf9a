# CPU demo (tools/run_det_demo.py), not a paper setting: Oriented R-CNN
# (le90) with a small S5 ViT trained from scratch (width 128, 4 blocks, 4
# heads, patch 8 for the 15-40 px vehicles and ships) + simple feature
# pyramid (64 channels) + FPN (64 channels, strides 4-64 as the paper's
# model), oriented RPN and rotated RoI head, on 256 crops of the DOTA demo
# patches (4 classes).
_base_ = [
    '../_base_/models/s5_oriented_rcnn_vit.py',
    '../_base_/datasets/dota-mini.py',
    '../_base_/schedules/schedule_det-demo_600.py',
    '../_base_/default_runtime_det.py',
]
vit = dict(_delete_=True, embed_dims=128, num_layers=4, num_heads=4,
           out_indices=(0, 1, 2, 3))
model = dict(
    backbone=dict(arch=vit, img_size=256, patch_size=8, drop_path_rate=0.),
    neck=[
        dict(type='mmdet.SimpleFeaturePyramid', in_channels=128,
             out_channels=64),
        # patch 8: the pyramid has strides 2-16; the FPN starts at 4
        dict(type='mmdet.FPN', in_channels=[64] * 4, out_channels=64,
             start_level=1, num_outs=5),
    ],
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=4)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500),
                   rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=500),
                  rcnn=dict(max_per_img=300)))
del vit
# the 8-GPU total (2 images per GPU): auto_scale_lr.enable=True
# scales the lr to another total (docs/scaling.md)
auto_scale_lr = dict(enable=False, base_batch_size=8 * 2)
