# MoE-MDF segmentor (S5_METHOD.md sections 3-4): one S5ViT-B with MoE FFNs
# (4 experts, p = 256) shared by Vaihingen, Potsdam, LoveDA and OpenEarthMap,
# one simple feature pyramid, one UperNet + classifier per dataset (that of
# ./s5_upernet_vit.py): 160.4 M parameters (p = 128: 146.2 M, p = 512:
# 188.7 M; num_experts=0: plain multi-dataset fine-tuning, 132.1 M). Samples
# are routed by metainfo['dataset_name'] (list it in
# PackSegInputs(meta_keys=...)).
_base_ = ['./s5_upernet_vit.py']
dataset_names = ['vaihingen', 'potsdam', 'loveda', 'openearthmap']


def _uper_head(num_classes):
    return dict(_base_.model.decode_head, num_classes=num_classes)


model = dict(
    type='MultiHeadEncoderDecoder',
    dataset_names=dataset_names,
    backbone=dict(
        num_experts=4, expert_width=256, dataset_names=dataset_names),
    decode_head=dict(
        _delete_=True,  # one head per dataset instead of one
        vaihingen=_uper_head(5),
        potsdam=_uper_head(5),
        loveda=_uper_head(7),
        openearthmap=_uper_head(9)))
del _uper_head
