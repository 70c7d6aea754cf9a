# mmengine FlexibleRunner + FSDP (S5FSDPStrategy) for the large S5ViT models: full
# sharding (parameters, gradients, AdamW state split over the GPUs), one FSDP
# unit per ViT block (s5_mm.engine.fsdp.s5_layer_wrap_policy; the patch
# embedding, position embedding, neck and UperNet head form the root unit),
# bf16 compute through FSDP mixed precision (sharded fp32 master weights,
# bf16 gathered copies, fp32 gradient reduction). Activation checkpointing is
# the backbone's own (with_cp=True), around each FSDP block unit. Checkpoints
# are full (rank 0 writes one plain .pth that tools/test.py and fine-tuning
# configs load as is, and that AtomicCheckpointHook renames in one step).
# The entry config sets optim_wrapper (AmpOptimWrapper, dtype='bfloat16').
runner_type = 'FlexibleRunner'
strategy = dict(
    # mmengine's FSDPStrategy with resume fixed (s5_mm/engine/fsdp.py)
    type='S5FSDPStrategy',
    model_wrapper=dict(
        type='MMFullyShardedDataParallel',
        sharding_strategy='FULL_SHARD',
        auto_wrap_policy=dict(
            type='s5_layer_wrap_policy',
            layer_cls=['s5_mm.models.backbones.vit.TransformerBlock']),
        mixed_precision=dict(
            param_dtype='bfloat16',
            reduce_dtype='float32',
            buffer_dtype='float32'),
        backward_prefetch='BACKWARD_PRE',
        limit_all_gathers=True,
        # the frozen, unused cls_token shares the root unit with trained
        # parameters: FSDP1 allows mixed requires_grad only with orig params
        use_orig_params=True),
    state_dict_cfg='full')
