# CPU demo (tools/run_det_demo.py), not a paper setting: the two-dataset
# MoE-MDF detector at the size of ../sdf_det/vit-tiny_dota-mini.py, from
# scratch: one small MoE ViT (2 experts, p = 32 of 128) + simple feature
# pyramid, per dataset its own FPN, oriented RPN and RoI head; the DOTA demo
# patches ('dota', 4 classes) and the DIOR-R-format crops ('dior', 3
# classes), 2 + 2 crops per step.
_base_ = [
    '../_base_/models/s5_moe_oriented_rcnn_vit.py',
    '../_base_/datasets/dota-mini_dior-fmt.py',
    '../_base_/schedules/schedule_det-demo_600.py',
    '../_base_/default_runtime_det.py',
]
vit = dict(_delete_=True, embed_dims=128, num_layers=4, num_heads=4,
           out_indices=(0, 1, 2, 3))


def _head(num_classes):
    return dict(
        neck=dict(in_channels=[64] * 4, out_channels=64, start_level=1),
        rpn_head=dict(in_channels=64, feat_channels=64),
        roi_head=dict(
            bbox_roi_extractor=dict(out_channels=64),
            bbox_head=dict(in_channels=64, fc_out_channels=256,
                           num_classes=num_classes)))


model = dict(
    backbone=dict(arch=vit, img_size=256, patch_size=8, drop_path_rate=0.,
                  expert_width=32),
    neck=dict(in_channels=128, out_channels=64),
    dataset_heads=dict(dior=_head(3), dota=_head(4)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500),
                   rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=500),
                  rcnn=dict(max_per_img=300)))
del _head
del vit
# the 8-GPU total (2 datasets x 2 images per GPU): auto_scale_lr.enable=True
# scales the lr to another total (docs/scaling.md)
auto_scale_lr = dict(enable=False, base_batch_size=8 * 4)
