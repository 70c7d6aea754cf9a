# S4P ViT-L (configs/s4p/vit-l_rs4p1m.py) on mmengine's FlexibleRunner with
# FSDP: full sharding over the GPUs, one FSDP unit per ViT block, activation
# checkpointing per block (backbone with_cp=True), bf16 (FSDP mixed precision
# + bf16 autocast); 12 + 12 images of 512 per GPU as in the paper.
# Memory per GPU: benchmarks/memory_table.py (benchmarks/RESULTS.md).
# The S5 'self' teacher (the student in eval mode, no grad) is the supported
# mode here: only the student trains.
# Launch (8 GPUs, one node):
#   bash tools/dist_train.sh configs/s4p/vit-l_rs4p1m_fsdp.py 8 \
#       --work-dir work_dirs/s4p_vit-l_fsdp
# Resume: the same command + --resume (checkpoints are full .pth files).
_base_ = ['./vit-l_rs4p1m.py', '../_base_/strategies/fsdp_vit_bf16.py']
# bf16 has fp32's exponent range: a fixed loss scale of 1 (the scaler still
# skips a step whose gradients are not finite); use_fsdp: ShardedGradScaler.
optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='bfloat16', loss_scale=1.0, use_fsdp=True)
