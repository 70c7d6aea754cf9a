# LoveDA test-set export of a trained MoE-MDF ViT-B for the LoveDA server:
# uint8 PNGs with class ids 0..6 named like the images, in
# work_dirs/loveda_submit/ (zip them for the server). Sliding window 512/256
# as in the validation.
#   python tools/test.py configs/mdf/vit-b-moe_loveda-submit.py CKPT
_base_ = ['./vit-b-moe_4seg.py']
test_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MDFConcatDataset', dataset_names=['loveda'],
                 datasets=[_base_.loveda_submit_dataloader.dataset]))
test_evaluator = dict(
    _delete_=True,
    type='MultiDatasetSegMetric',
    dataset_metrics=dict(loveda=dict(type='S5IoUMetric', format_only=True,
                                     output_dir='work_dirs/loveda_submit')))
