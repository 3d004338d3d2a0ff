"""Model cards, registry, every network through the runner, safe weights, cancel."""
import json
import pickle
import threading
import time

import numpy as np
import pytest
import torch

from core.errors import Cancelled, DelineateError
from core.labels import Label, LabelTable
from core.progress import CancelToken
from core.volume import Volume
from inference.card import CardError, ModelCard
from inference.networks import build
from inference.registry import Registry
from inference.runner import segment
from inference.weights import UnsafeWeightsError, load_state, save_weights

TINY = {  # architecture: (params, patch) - tiny, for speed; the shipped cards hold the real ones
    "UNet": ({"channels": [4, 8], "strides": [2]}, [16, 16, 16]),
    "AttentionUnet": ({"channels": [4, 8], "strides": [2]}, [16, 16, 16]),
    "BasicUNetPlusPlus": ({"features": [4, 4, 8, 8, 16, 4]}, [32, 32, 32]),
    "SegResNet": ({"init_filters": 8, "blocks_down": [1, 1], "blocks_up": [1]}, [16, 16, 16]),
    "DynUNet": ({"kernel_size": [3, 3, 3], "strides": [1, 2, 2], "upsample_kernel_size": [2, 2], "filters": [4, 8, 8]},
                [16, 16, 16]),
    "UNETR": ({"feature_size": 4, "hidden_size": 24, "mlp_dim": 48, "num_heads": 2}, [16, 16, 16]),
    "SwinUNETR": ({"feature_size": 12, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1]}, [64, 64, 64]),
    "DeepLab": ({"channels": [4, 8, 16]}, [16, 16, 16]),
    "ResUNetPP": ({"channels": [4, 8, 16]}, [16, 16, 16]),
    "FCN": ({"channels": [4, 8, 16]}, [16, 16, 16]),
    "SegNet": ({"channels": [4, 8]}, [16, 16, 16]),
    "TransUNet": ({"channels": [4, 8, 16], "hidden_size": 16, "num_layers": 1, "num_heads": 2}, [16, 16, 16]),
    "AdversarialUNet": ({"channels": [4, 8], "critic_channels": [4, 8]}, [16, 16, 16]),
    "DiffusionSegmenter": ({"channels": [8, 16], "attention_levels": [False, True], "norm_num_groups": 4,
                            "sampling_steps": 2, "samples": 1}, [16, 16, 16]),
}


def make_card(folder, arch="UNet", dims=3, spacing=(2.0, 2.0, 2.0), patch=None, params=None, **kw):
    p, default_patch = TINY[arch]
    patch = patch or (default_patch if dims == 3 else default_patch[:2])
    card = ModelCard(
        id=kw.pop("id", f"tiny-{arch.lower()}"), version=kw.pop("version", "1.0.0"), name=f"tiny {arch}",
        architecture=arch, parameters=params or p, spatial_dims=dims, modality=kw.pop("modality", "MR"),
        in_channels=1, labels=LabelTable((Label(1, "a", (255, 0, 0)), Label(2, "b", (0, 255, 0)))),
        normalisation={"kind": "zscore"}, patch_size=list(patch), training_data="random init (test)",
        licence="CC0", spacing=list(spacing) if spacing else None, **kw)
    torch.manual_seed(0)
    net = build(arch, dims, 1, card.n_classes, card.parameters, card.patch_size)
    folder.mkdir(parents=True, exist_ok=True)
    card.weights_sha256 = save_weights(net, folder / card.weights)
    card.save(folder)
    return ModelCard.load(folder / "card.json")


@pytest.mark.parametrize("arch", list(TINY))
def test_every_network_runs_through_the_runner_on_the_exact_grid(arch, tmp_path, oblique_mr):
    card = make_card(tmp_path / arch, arch)
    seg = segment(oblique_mr, card, device="cpu")
    assert seg.labels.geometry is oblique_mr.geometry
    assert seg.labels.array.shape == oblique_mr.array.shape
    assert seg.probabilities.shape == (3,) + oblique_mr.array.shape and seg.probabilities.dtype == np.float16
    np.testing.assert_allclose(seg.probabilities.astype(np.float32).sum(0), 1.0, atol=0.02)
    np.testing.assert_array_equal(seg.labels.array, np.argmax(seg.probabilities, 0))
    assert seg.labels.table.get(2).name == "b"


def test_2d_model_on_a_2d_image(tmp_path):
    card = make_card(tmp_path / "u2", "UNet", dims=2, spacing=None, orientation=None, patch=[32, 32])
    img = Volume.from_array(np.random.default_rng(1).random((1, 40, 50)).astype(np.float32), spacing=(0.3, 0.3, 1))
    seg = segment(img, card, device="cpu")
    assert seg.labels.array.shape == (1, 40, 50) and seg.labels.geometry is img.geometry


def test_card_validation_messages(tmp_path):
    card = make_card(tmp_path / "m", "UNet")
    d = json.loads((tmp_path / "m" / "card.json").read_text())
    for change, message in ((lambda d: d.pop("labels"), "missing field 'labels'"),
                            (lambda d: d.update(architecture="ResNet9000"), "unknown architecture"),
                            (lambda d: d.update(patch_size=[16, 16]), "patch_size must be 3"),
                            (lambda d: d.update(labels=[{"value": 0, "name": "bg"}]), "values must be positive"),
                            (lambda d: d.update(normalisation={"kind": "magic"}), "normalisation.kind"),
                            (lambda d: d.update(colour="red"), "unknown field")):
        bad = json.loads(json.dumps(d))
        change(bad)
        path = tmp_path / "bad" / "x" / "1" / "card.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(bad))
        with pytest.raises(CardError, match=message):
            ModelCard.load(path)
    reg = Registry([tmp_path / "bad"])
    assert reg.cards() == [] and "invalid model card" in reg.problems[0]
    assert card.to_dict()["labels"][0]["name"] == "a"


def test_registry_versions_and_defaults(tmp_path):
    make_card(tmp_path / "tiny-unet" / "1.0.0", "UNet")
    make_card(tmp_path / "tiny-unet" / "1.2.0", "UNet", version="1.2.0", parent_version="1.0.0")
    make_card(tmp_path / "tiny-ct" / "0.1.0", "SegResNet", id="tiny-ct", version="0.1.0", modality="CT")
    reg = Registry([tmp_path])
    assert reg.get("tiny-unet").version == "1.2.0" and reg.get("tiny-unet", "1.0.0").version == "1.0.0"
    assert reg.default_for("CT", 3).id == "tiny-ct"
    with pytest.raises(DelineateError, match="no model 'nope'"):
        reg.get("nope")


class _Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_pickle_payload_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "extra": _Payload()}, path)
    with pytest.raises(UnsafeWeightsError, match="refused"):
        load_state(path)
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"x": _Payload()}))
    with pytest.raises(DelineateError):
        load_state(raw)
    ok = tmp_path / "ok.pt"
    torch.save({"weight": torch.ones(2)}, ok)
    assert torch.equal(load_state(ok)["weight"], torch.ones(2))


def test_changed_weights_are_detected(tmp_path):
    card = make_card(tmp_path / "m", "UNet")
    data = bytearray(card.weights_path.read_bytes())
    data[-1] ^= 0xFF
    card.weights_path.write_bytes(bytes(data))
    with pytest.raises(DelineateError, match="sha256"):
        segment(Volume.from_array(np.zeros((8, 8, 8), np.float32)), card, device="cpu")


def test_cancel_stops_a_long_run_within_a_second(tmp_path):
    card = make_card(tmp_path / "m", "UNet", patch=[16, 16, 16], spacing=(1, 1, 1))
    big = Volume.from_array(np.random.default_rng(2).random((96, 160, 160)).astype(np.float32))
    token = CancelToken()
    seen = []
    result = {}

    def run():
        try:
            segment(big, card, lambda f, m="": seen.append(f), token, device="cpu")
            result["finished"] = True
        except Cancelled:
            result["cancelled"] = time.perf_counter()

    th = threading.Thread(target=run)
    th.start()
    deadline = time.perf_counter() + 60
    while not any(0.15 < f < 0.9 for f in seen) and time.perf_counter() < deadline:
        time.sleep(0.01)
    asked = time.perf_counter()
    token.cancel()
    th.join(10)
    assert "cancelled" in result, "the run finished before it could be cancelled"
    assert result["cancelled"] - asked < 1.0


def test_cli_segment_writes_labels_on_the_input_grid(tmp_path, oblique_mr, monkeypatch, capsys):
    import main
    from formats.io import read_labelmap, write_image

    monkeypatch.setenv("DELINEATE_MODELS", str(tmp_path / "models"))
    make_card(tmp_path / "models" / "tiny-unet" / "1.0.0", "UNet")
    src, out = tmp_path / "in.nii.gz", tmp_path / "out.seg.nrrd"
    write_image(oblique_mr, src)
    assert main.main(["segment", str(src), str(out), "--model", "tiny-unet", "--device", "cpu"]) == 0
    lm = read_labelmap(out)
    ref = __import__("formats.io", fromlist=["read_image"]).read_image(src)
    assert lm.geometry.same_grid(ref.geometry, tol=1e-5) and lm.array.shape == ref.array.shape
    assert main.main(["models"]) == 0
    assert "tiny-unet v1.0.0" in capsys.readouterr().out


def test_shipped_brain_model_on_the_real_template():
    """The real-image path (1 mm grid, exact-zero background, resampling both ways) must work: a
    normalisation mismatch once labelled the whole background as grey matter on this image."""
    from core.metrics import dice
    from inference.training.synth_brain import template_labels

    card = Registry().get("brain-tissue")
    t1, truth = template_labels()
    seg = segment(t1, card, device="cpu")
    assert dice(seg.labels.array == 2, truth == 2) > 0.85 and dice(seg.labels.array == 3, truth == 3) > 0.85
    assert seg.labels.volumes_ml()[2] < 1500  # grey matter of one brain, not the field of view
