"""Each importer turns a small model the test builds into a registry entry whose outputs equal the
original model's on the same image."""
import json

import numpy as np
import pytest
import torch

from core.volume import Volume
from inference.card import ModelCard
from inference.importers import import_monai_bundle, import_nnunet, import_onnx, import_torchscript
from inference.registry import Registry
from inference.runner import segment
from tests.conftest import rotation


def _tiny_unet(out=3):
    from inference.monai_light import light

    UNet = light("monai.networks.nets").UNet

    torch.manual_seed(0)
    return UNet(3, 1, out, channels=(4, 8), strides=(2,)).eval()


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    arr = rng.normal(0, 1, (12, 20, 18)).astype(np.float32)
    arr[4:8, 5:15, 4:14] += 3
    return Volume.from_array(arr, spacing=(1.5, 1.2, 2.5), origin=(3, -7, 11), direction=rotation(0.1, 0.2, -0.1),
                             modality="MR")


def _same_as_original(card, original, image):
    imported = segment(image, card, device="cpu")
    direct = segment(image, card, device="cpu", net=original)
    assert imported.labels.geometry is image.geometry
    np.testing.assert_allclose(imported.probabilities.astype(np.float32), direct.probabilities.astype(np.float32),
                               atol=2e-3)
    return imported


def test_torchscript(tmp_path, image):
    net = _tiny_unet()
    path = tmp_path / "m.pt"
    torch.jit.trace(net, torch.zeros(1, 1, 16, 16, 16)).save(str(path))
    card = import_torchscript(path, tmp_path / "reg", model_id="ts", spatial_dims=3, trust_code=True,
                              patch_size=[16, 16, 16], modality="MR", normalisation={"kind": "zscore"},
                              labels={1: "tumour", 2: "oedema"}, spacing=[2.0, 2.0, 2.0])
    assert card.labels.get(2).name == "oedema" and card.architecture == "TorchScript"
    _same_as_original(card, net, image)
    assert Registry([tmp_path / "reg"]).get("ts").version == "1.0.0"


def test_onnx(tmp_path, image):
    net = _tiny_unet()
    path = tmp_path / "m.onnx"
    torch.onnx.export(net, (torch.zeros(1, 1, 16, 16, 16),), str(path), input_names=["image"],
                      output_names=["logits"], dynamo=False, dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    card = import_onnx(path, tmp_path / "reg", model_id="onnx", modality="MR",
                       normalisation={"kind": "zscore"}, spacing=[2.0, 2.0, 2.0])
    assert card.patch_size == [16, 16, 16] and len(card.labels) == 2
    _same_as_original(card, net, image)


def test_monai_bundle(tmp_path, image):
    bundle = tmp_path / "tiny_bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "configs" / "metadata.json").write_text(json.dumps({
        "name": "Tiny bundle", "version": "0.2.0", "license": "Apache-2.0", "data_source": "noise",
        "network_data_format": {
            "inputs": {"image": {"modality": "CT", "num_channels": 1, "spatial_shape": [16, 16, 16]}},
            "outputs": {"pred": {"num_channels": 3, "channel_def": {"0": "background", "1": "spleen", "2": "liver"}}}}}))
    net_def = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
               "channels": [4, 8], "strides": [2]}
    (bundle / "configs" / "inference.json").write_text(json.dumps({
        "network_def": net_def,
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": "image", "pixdim": [2.0, 2.0, 2.0]},
            {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -2, "a_max": 4, "b_min": 0, "b_max": 1}]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [16, 16, 16], "sw_batch_size": 1}}))
    net = _tiny_unet()
    torch.save(net.state_dict(), bundle / "models" / "model.pt")
    card = import_monai_bundle(bundle, tmp_path / "reg")
    assert (card.id, card.version, card.modality, card.orientation) == ("tiny-bundle", "0.2.0", "CT", "RAS")
    assert card.normalisation == {"kind": "ct_window", "low": -2.0, "high": 4.0}
    assert [lab.name for lab in card.labels] == ["spleen", "liver"]
    seg = _same_as_original(card, net, image)
    assert seg.labels.table.get(1).name == "spleen"


def _nnunet_folder(root):
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    kwargs = {"n_stages": 2, "features_per_stage": [4, 8], "conv_op": "torch.nn.modules.conv.Conv3d",
              "kernel_sizes": [[3, 3, 3], [3, 3, 3]], "strides": [[1, 1, 1], [2, 2, 2]], "n_conv_per_stage": [2, 2],
              "n_conv_per_stage_decoder": [2], "conv_bias": True,
              "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-5, "affine": True},
              "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
              "nonlin_kwargs": {"inplace": True}}
    plans = {"dataset_name": "Dataset042_Tiny", "plans_name": "nnUNetPlans", "transpose_forward": [0, 1, 2],
             "configurations": {"3d_fullres": {
                 "patch_size": [16, 16, 16], "spacing": [2.5, 1.5, 1.5],
                 "normalization_schemes": ["CTNormalization"], "use_mask_for_norm": [False],
                 "architecture": {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                                  "arch_kwargs": kwargs,
                                  "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}}},
             "foreground_intensity_properties_per_channel": {"0": {
                 "mean": 0.5, "std": 1.5, "percentile_00_5": -2.0, "percentile_99_5": 4.0}}}
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumour": 2},
               "numTraining": 3, "file_ending": ".nii.gz"}
    folder = root / "Dataset042_Tiny" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (folder / "fold_0").mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset))
    import pydoc

    built = {k: pydoc.locate(v) if k in ("conv_op", "norm_op", "nonlin") else v for k, v in kwargs.items()}
    torch.manual_seed(0)
    net = PlainConvUNet(input_channels=1, num_classes=3, deep_supervision=False, **built).eval()
    torch.save({"network_weights": net.state_dict(), "trainer_name": "nnUNetTrainer", "current_epoch": 1000,
                "logging": {"mean_fg_dice": [np.float64(0.71), np.float64(0.74)]},
                "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset},
                "inference_allowed_mirroring_axes": (0, 1, 2)}, folder / "fold_0" / "checkpoint_final.pth")
    return folder, net


def test_nnunet_v2_folder(tmp_path, image):
    folder, net = _nnunet_folder(tmp_path)
    card = import_nnunet(folder, tmp_path / "reg", model_id="nn")
    assert card.modality == "CT" and card.orientation == "image" and card.spacing == [1.5, 1.5, 2.5]
    assert card.normalisation["kind"] == "ct_clip_zscore"
    assert [lab.name for lab in card.labels] == ["liver", "tumour"]
    ct = Volume(image.array * 100, image.geometry, modality="CT")
    _same_as_original(card, net, ct)
    assert ModelCard.load(card.folder / "card.json").architecture == "nnUNetPlainConvUNet"


def test_cli_import_of_an_nnunet_folder(tmp_path, monkeypatch, capsys):
    import main

    monkeypatch.setenv("DELINEATE_MODELS", str(tmp_path / "user-models"))
    folder, _net = _nnunet_folder(tmp_path)
    assert main.main(["import-model", "nnunet", str(folder), "--id", "tiny-nn"]) == 0
    assert "tiny-nn v1.0.0" in capsys.readouterr().out
    assert Registry([tmp_path / "user-models"]).get("tiny-nn").labels.get(2).name == "tumour"
