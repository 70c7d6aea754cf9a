# Plain multi-dataset fine-tuning of ViT-B for comparison (S5_METHOD.md
# section 3): the shared backbone has plain FFNs (no experts), four UperNet
# decoders + classifiers: 132.1 M parameters; data, schedule, init and
# evaluation as vit-b-moe_4seg.py.
_base_ = ['./vit-b-moe_4seg.py']
model = dict(backbone=dict(num_experts=0, dataset_names=None))
