# MoE-MDF segmentation, ViT-H (feature blocks 15, 23, 27, 31): 824.5 M
# parameters; everything else as vit-b-moe_4seg.py.
_base_ = ['./vit-b-moe_4seg.py']
arch = 'h'
embed_dims = 1280
num_layers = 32
load_from = 'pretrain/s4p_vit-h_rs4p1m.pth'
model = dict(
    backbone=dict(arch=arch),
    neck=dict(in_channels=embed_dims),
    decode_head=dict(
        vaihingen=dict(in_channels=[embed_dims] * 4),
        potsdam=dict(in_channels=[embed_dims] * 4),
        loveda=dict(in_channels=[embed_dims] * 4),
        openearthmap=dict(in_channels=[embed_dims] * 4)))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=num_layers))
