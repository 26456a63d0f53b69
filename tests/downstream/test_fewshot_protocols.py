"""The few-shot protocols' published settings, and Ericsson's square-resize preprocessing against PIL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from downstream_fixtures import tiny_backbone
from PIL import Image

from mast_bench.downstream.fewshot.protocols import FEWSHOT_PROTOCOLS, get_fewshot_protocol
from mast_bench.registry import UnknownNameError


def test_published_episode_settings() -> None:
    e, a = FEWSHOT_PROTOCOLS["ericsson"], FEWSHOT_PROTOCOLS["augself"]
    assert (e.ways, e.shots, e.queries, e.episodes, e.head, e.class_rule) == (5, (5, 20, 50), 15, 600, "protonet",
                                                                              "refuse")  # fmt: skip
    assert (a.ways, a.shots, a.queries, a.episodes, a.head, a.class_rule) == (5, (1, 5), 16, 2000, "logreg", "augself")
    with pytest.raises(UnknownNameError, match=r"unknown few-shot protocol 'protonet'\. Valid few-shot protocols: "):
        get_fewshot_protocol("protonet")


def test_ericsson_resizes_to_a_257_square_then_crops_224() -> None:
    spec = tiny_backbone().spec
    pre = get_fewshot_protocol("ericsson").preprocessing(spec)
    assert pre.to_dict()["square"] is True and (pre.resize, pre.crop, pre.interpolation) == (257, 224, "bilinear")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (90, 300, 3), dtype=np.uint8))  # wide: the aspect ratio is not kept
    out = pre.transform()(image)
    assert out.shape == (3, 224, 224)
    ref = image.resize((257, 257), Image.BILINEAR).crop((16, 16, 240, 240))  # (257 - 224) / 2 = 16.5 → 16
    ref_t = torch.from_numpy(np.asarray(ref, dtype=np.float32) / 255).permute(2, 0, 1)
    ref_t = (ref_t - torch.tensor(spec.mean).view(3, 1, 1)) / torch.tensor(spec.std).view(3, 1, 1)
    torch.testing.assert_close(out, ref_t, atol=2 / 255 / min(spec.std), rtol=0)


def test_augself_uses_its_linear_preprocessing() -> None:
    spec = tiny_backbone().spec  # small stem: AugSelf's STL-10 models are evaluated at 96 px
    pre = get_fewshot_protocol("augself").preprocessing(spec)
    assert (pre.resize, pre.crop, pre.interpolation) == (96, 96, "bicubic") and "square" not in pre.to_dict()
    native = get_fewshot_protocol("synthetic-fewshot").preprocessing(spec)
    assert (native.resize, native.crop) == (None, None)
