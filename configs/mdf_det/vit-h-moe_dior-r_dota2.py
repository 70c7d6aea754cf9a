# S5 MoE-MDF oriented detection, ViT-H (paper Table 1: DIOR-R 75.30, DOTA-v2
# 59.89 mAP): ./vit-b-moe_dior-r_dota2.py with ViT-H (feature blocks 15, 23,
# 27, 31) and activation checkpointing; 730.0 M parameters.
_base_ = ['./vit-b-moe_dior-r_dota2.py']
pretrained = 'pretrain/s4p_vit-h_rs4p1m.pth'
model = dict(
    backbone=dict(arch='h', with_cp=True,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(in_channels=1280),
    dataset_heads=dict(
        dior=dict(neck=dict(in_channels=[1280] * 4)),
        dota=dict(neck=dict(in_channels=[1280] * 4))))
