# S4P ViT-H (feature blocks 15, 23, 27, 31); everything else as ViT-B.
_base_ = ['./vit-b_rs4p1m.py']
embed_dims = 1280
model = dict(
    segmentor=dict(
        backbone=dict(
            arch='h',
            init_cfg=dict(checkpoint='pretrain/mae_vit-h_millionaid.pth')),
        neck=dict(in_channels=embed_dims),
        decode_head=dict(in_channels=[embed_dims] * 4)))
