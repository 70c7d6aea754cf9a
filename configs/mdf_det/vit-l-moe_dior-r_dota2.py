# S5 MoE-MDF oriented detection, ViT-L (paper Table 1: DIOR-R 75.21, DOTA-v2
# 59.71 mAP): ./vit-b-moe_dior-r_dota2.py with ViT-L (feature blocks 7, 11,
# 15, 23); 377.8 M parameters.
_base_ = ['./vit-b-moe_dior-r_dota2.py']
pretrained = 'pretrain/s4p_vit-l_rs4p1m.pth'
model = dict(
    backbone=dict(arch='l', init_cfg=dict(checkpoint=pretrained)),
    neck=dict(in_channels=1024),
    dataset_heads=dict(
        dior=dict(neck=dict(in_channels=[1024] * 4)),
        dota=dict(neck=dict(in_channels=[1024] * 4))))
