# S4P pre-training of ViT-B + UperNet (S5_METHOD.md section 2): labelled
# iSAID (16 classes) + RS4P-1M unlabelled, FixMatch + CutMix, same-network
# teacher, 120k iterations, 12 + 12 images per GPU on 8 GPUs, AMP,
# activation checkpointing. Launch: tools/dist_train.sh <this> 8
_base_ = [
    '../_base_/models/s5_upernet_vit.py', '../_base_/datasets/isaid_s4p.py',
    '../_base_/schedules/schedule_s4p_120k.py', '../_base_/default_runtime.py'
]
arch = 'b'
embed_dims = 768
# MAE weights (MillionAID, 1600 epochs) in this repository's key layout.
pretrained = 'pretrain/mae_vit-b_millionaid.pth'

segmentor = _base_.model
segmentor.backbone.update(
    arch=arch,
    img_size=512,
    patch_size=16,
    in_channels=3,
    out_indices=None,  # the arch's feature blocks
    drop_path_rate=0.1,
    with_cp=True,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
segmentor.neck.update(in_channels=embed_dims)
segmentor.decode_head.update(in_channels=[embed_dims] * 4, num_classes=16)
# L_sup averages over labelled (non-ignored) pixels, as L_unsup over
# non-padding pixels; MMSeg's default would also count padding.
segmentor.decode_head.loss_decode.avg_non_ignore = True
model = dict(
    _delete_=True,
    type='S4PSegmentor',
    segmentor=segmentor,
    semi_train_cfg=dict(
        conf_thresh=0.95,
        sup_weight=0.5,
        unsup_weight=0.5,
        cutmix_prob=0.5,
        cutmix_area=(0.02, 0.4),
        cutmix_aspect=(0.3, 3.3),
        teacher='self',
        unsup_start_iter=0),
    semi_test_cfg=dict(predict_on='student'))
# Logs the pseudo-label class shares; warns when one class holds more than
# 90 % of the confident pixels (collapse).
custom_hooks = [dict(type='IterSeedHook'),
                dict(type='S4PStatsHook', interval=50, collapse_share=0.9)]
# 8 GPUs x (12 + 12) images, the paper's setting.
auto_scale_lr = dict(enable=False, base_batch_size=8 * 24)
