# S4P ViT-L (feature blocks 7, 11, 15, 23); everything else as ViT-B.
_base_ = ['./vit-b_rs4p1m.py']
embed_dims = 1024
model = dict(
    segmentor=dict(
        backbone=dict(
            arch='l',
            init_cfg=dict(checkpoint='pretrain/mae_vit-l_millionaid.pth')),
        neck=dict(in_channels=embed_dims),
        decode_head=dict(in_channels=[embed_dims] * 4)))
