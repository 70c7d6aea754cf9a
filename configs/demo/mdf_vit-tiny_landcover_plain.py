# Plain multi-dataset fine-tuning (no MoE) for the MDF demo comparison: the
# same two datasets, heads, steps and initialisation as
# mdf_vit-tiny_landcover.py, with a shared plain FFN instead of experts.
_base_ = ['./mdf_vit-tiny_landcover.py']

model = dict(backbone=dict(num_experts=0, dataset_names=None))
