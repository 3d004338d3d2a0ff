"""app.actions.models without Qt: the one default-model lookup, and importing a model from a typed
request (the dialog's and the CLI's), with the refusals a user sees."""
import numpy as np
import pytest

from app.actions.models import IMPORT_NORMALISATIONS, KINDS, ImportSpec, NoDefaultModel, default_model, import_model
from core.errors import DelineateError
from core.volume import Volume
from inference.card import DATASET_NORMALISATIONS, NORMALISATIONS, ModelCard
from inference.registry import SHIPPED, Registry


def _volume(modality, shape):
    return Volume.from_array(np.zeros(shape, np.float32), spacing=(1.0, 1.0, 1.0), modality=modality)


def test_default_model_by_modality_and_dimensions():
    reg = Registry([SHIPPED])
    assert default_model(_volume("MR", (8, 16, 16)), reg).id == "brain-tissue"
    assert default_model(_volume("CT", (8, 16, 16)), reg).id == "ct-torso-phantom"
    assert default_model(_volume("US", (1, 32, 32)), reg).id == "us-lesion-2d"
    with pytest.raises(NoDefaultModel, match="no model is made for PT 2D images") as refused:
        default_model(_volume("PT", (1, 32, 32)), reg)  # never a model for another modality, silently
    assert refused.value.candidates[0].id == "us-lesion-2d"  # the 2D one offered first
    with pytest.raises(NoDefaultModel, match="OT 2D"):
        default_model(_volume("OT", (1, 32, 32)), reg)  # a PNG photo does not get the ultrasound model
    assert default_model(None, reg).id == "brain-tissue"  # nothing open: the sample's model


def test_default_model_says_when_there_is_none(tmp_path):
    card = Registry([SHIPPED]).get("ct-torso-phantom")
    card.save(tmp_path / "only-ct" / "1.0.0")  # a registry holding one 3D CT model
    reg = Registry([tmp_path])
    with pytest.raises(NoDefaultModel, match=r"MR 3D images.*ct-torso-phantom \(CT 3D\)"):
        default_model(_volume("MR", (8, 16, 16)), reg)
    with pytest.raises(NoDefaultModel, match="US 2D images"):
        default_model(_volume("US", (1, 32, 32)), reg)


def test_option_lists_come_from_the_cards():
    assert set(IMPORT_NORMALISATIONS) | set(DATASET_NORMALISATIONS) == set(NORMALISATIONS)
    assert "ct_clip_zscore" not in IMPORT_NORMALISATIONS and KINDS[0] == "torchscript"


def test_spec_from_text():
    spec = ImportSpec.from_text("onnx", " /m/x.onnx ", id=" liver ", modality="CT", labels="1=liver, 2 = tumour",
                                patch="96,96,64", spacing="1.5,1.5,2", norm="ct_window", window="-200,300")
    assert spec.id == "liver" and str(spec.path) == "/m/x.onnx" and spec.labels == {1: "liver", 2: "tumour"}
    assert spec.patch == [96, 96, 64] and spec.spacing == [1.5, 1.5, 2.0]
    assert spec.normalisation == {"kind": "ct_window", "low": -200.0, "high": 300.0}
    empty = ImportSpec.from_text("nnunet", "/f", norm="ct_window")
    assert empty.id is None and empty.labels is None and empty.patch is None
    assert (empty.normalisation["low"], empty.normalisation["high"]) == (-1000.0, 1000.0)
    for field, text, said in (("labels", "liver", "VALUE=NAME"), ("labels", "x=liver", "VALUE=NAME"),
                              ("patch", "96,9.5", "patch size"), ("spacing", "1,a,1", "spacing"),
                              ("window", "-1000", "CT window")):
        kw = {field: text, "norm": "ct_window"} if field == "window" else {field: text}
        with pytest.raises(DelineateError, match=said):
            ImportSpec.from_text("onnx", "/m/x.onnx", **kw)


@pytest.mark.parametrize("spec, said", [
    (ImportSpec("torchscript", "m.pt", id="ts", modality="CT"), "torchscript import needs an id, a patch size and a "
                                                                 "modality"),
    (ImportSpec("onnx", "m.onnx", id="x"), "onnx import needs an id and a modality"),
    (ImportSpec("keras", "m.h5", id="x", modality="CT"), "unknown model kind 'keras'"),
    (ImportSpec("onnx", "m.onnx", id="x", modality="CT", normalisation={"kind": "ct_clip_zscore"}),
     "needs the training set's clip bounds"),
    (ImportSpec("onnx", "m.onnx", id="x", modality="CT", normalisation={"kind": "ct_window", "low": 5, "high": 1}),
     "LOW below HIGH"),
    (ImportSpec("onnx", "m.onnx", id="x", modality="CT", spacing=[1.0, 1.0]), "3 positive numbers"),
    (ImportSpec("onnx", "", id="x", modality="CT"), "name the model file"),
])
def test_refusals_name_what_is_missing_and_write_nothing(tmp_path, spec, said):
    with pytest.raises(DelineateError, match=said):
        import_model(spec, tmp_path / "reg")
    assert not (tmp_path / "reg").exists()


def _onnx_conv(path, weights):
    """A 1x1x1 convolution from one channel to ``len(weights)`` logits, written with onnx.helper (a
    torch export takes seconds)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.asarray(weights, np.float32).reshape(-1, 1, 1, 1, 1), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["image", "w"], ["logits"])], "conv",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, 8, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_import_an_onnx_model_from_a_spec(tmp_path):
    from inference.runner import segment

    path = _onnx_conv(tmp_path / "m.onnx", [0.0, 1.0, -1.0])  # label 1 where the window is high, 2 where low
    seen = []
    spec = ImportSpec.from_text("onnx", str(path), id="Liver Net", modality="CT", labels="1=liver,2=tumour",
                                patch="8,8,8", norm="ct_window", window="-100,200")
    card = import_model(spec, tmp_path / "reg", progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    again = ModelCard.load(card.folder / "card.json")
    assert again.id == "liver-net" and again.architecture == "ONNX" and again.modality == "CT"
    assert [lab.name for lab in again.labels] == ["liver", "tumour"] and again.patch_size == [8, 8, 8]
    assert again.normalisation == {"kind": "ct_window", "low": -100.0, "high": 200.0} and again.spacing is None
    assert Registry([tmp_path / "reg"]).get("liver-net").version == "1.0.0"
    arr = np.full((6, 10, 12), -500.0, np.float32)
    arr[:, 5:] = 500.0  # windowed to 0 (below) and 1 (above): logits (0, 0, -0) and (0, 1, -1)
    ct = Volume.from_array(arr, spacing=(1.5, 1.5, 2.0), modality="CT")
    labels = segment(ct, again, device="cpu").labels
    assert labels.geometry is ct.geometry and np.all(labels.array[:, 5:] == 1) and np.all(labels.array[:, :5] == 0)
