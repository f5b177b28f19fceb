"""The full ERes2NetV2 layout of GPT-SoVITS' ``pretrained_eres2netv2w24s4ep4.ckpt``, by hand.

Shapes derived from 3D-Speaker's ERes2NetV2 as GPT-SoVITS' ``sv.py`` builds it (baseWidth=24, scale=4,
expansion=4, m_channels=64, feat_dim=80, embedding_size=192, blocks [3, 4, 6, 3]); a sample of tensors
from every kind of module, stated independently of :mod:`renderer.models.eres2net`.
"""

FULL_SV_LAYOUT: dict[str, tuple[int, ...]] = {
    "conv1.weight": (64, 1, 3, 3),
    "bn1.running_var": (64,),
    # stage 1, planes 64: group width floor(64*24/64)=24, 4 groups, out 64*4=256
    "layer1.0.conv1.weight": (96, 64, 1, 1),
    "layer1.0.convs.3.weight": (24, 24, 3, 3),
    "layer1.0.bns.3.running_mean": (24,),
    "layer1.0.conv3.weight": (256, 96, 1, 1),
    "layer1.0.shortcut.0.weight": (256, 64, 1, 1),
    "layer1.2.bn3.weight": (256,),
    # stage 2, planes 128: width 48, stride 2 in the first block's conv1 and shortcut
    "layer2.0.conv1.weight": (192, 256, 1, 1),
    "layer2.0.shortcut.0.weight": (512, 256, 1, 1),
    "layer2.3.conv3.weight": (512, 192, 1, 1),
    # stage 3, planes 256: width 96, AFF(96, r=4) between groups
    "layer3.0.fuse_models.0.local_att.0.weight": (24, 192, 1, 1),
    "layer3.0.fuse_models.0.local_att.0.bias": (24,),
    "layer3.0.fuse_models.2.local_att.3.weight": (96, 24, 1, 1),
    "layer3.5.fuse_models.2.local_att.4.running_var": (96,),
    "layer3.5.conv3.weight": (1024, 384, 1, 1),
    # stage 4, planes 512: width 192, out 2048
    "layer4.0.shortcut.0.weight": (2048, 1024, 1, 1),
    "layer4.2.fuse_models.2.local_att.0.weight": (48, 384, 1, 1),
    "layer3_ds.weight": (2048, 1024, 3, 3),
    "fuse34.local_att.0.weight": (512, 4096, 1, 1),
    "fuse34.local_att.1.num_batches_tracked": (),
    "fuse34.local_att.3.weight": (2048, 512, 1, 1),
    "seg_1.weight": (192, 40960),
    "seg_1.bias": (192,),
}
