# MoE-MDF segmentation, ViT-L (feature blocks 7, 11, 15, 23): 435.0 M
# parameters; everything else as vit-b-moe_4seg.py.
_base_ = ['./vit-b-moe_4seg.py']
arch = 'l'
embed_dims = 1024
num_layers = 24
load_from = 'pretrain/s4p_vit-l_rs4p1m.pth'
model = dict(
    backbone=dict(arch=arch),
    neck=dict(in_channels=embed_dims),
    decode_head=dict(
        vaihingen=dict(in_channels=[embed_dims] * 4),
        potsdam=dict(in_channels=[embed_dims] * 4),
        loveda=dict(in_channels=[embed_dims] * 4),
        openearthmap=dict(in_channels=[embed_dims] * 4)))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=num_layers))
