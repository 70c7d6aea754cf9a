# MoE-MDF oriented detector (S5_METHOD.md section 4): one S5ViT-B with MoE
# FFNs (2 experts, p = 256: DIOR-R, DOTA-v2.0) + shared simple feature
# pyramid, and per dataset its own FPN, oriented RPN and rotated RoI head
# (those of ./s5_oriented_rcnn_vit.py): 138.3 M parameters. Use with
# default_scope = 'mmrotate'; samples are routed by metainfo['dataset_name']
# (list it in PackDetInputs(meta_keys=...)).
_base_ = ['./s5_oriented_rcnn_vit.py']
dataset_names = ['dior', 'dota']


def _branch(num_classes):
    plain = _base_.model
    return dict(
        neck=plain.neck[1],  # the FPN
        rpn_head=plain.rpn_head,
        roi_head=dict(
            plain.roi_head,
            bbox_head=dict(plain.roi_head.bbox_head,
                           num_classes=num_classes)))


# A different detector class with per-dataset heads: the plain model's
# pieces are taken by reference, the rest of it is dropped.
model = dict(
    _delete_=True,
    type='mmdet.MultiHeadTwoStageDetector',
    data_preprocessor=_base_.model.data_preprocessor,
    dataset_names=dataset_names,
    backbone=dict(
        _base_.model.backbone,
        num_experts=2,
        expert_width=256,
        dataset_names=dataset_names),
    neck=_base_.model.neck[0],  # the shared simple feature pyramid
    dataset_heads=dict(dior=_branch(20), dota=_branch(18)),
    train_cfg=_base_.model.train_cfg,
    test_cfg=_base_.model.test_cfg)
del _branch
