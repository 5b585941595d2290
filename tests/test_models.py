"""One parametrized test over every registered model, plus the parameter counts that pin the originals."""
import pytest
import torch

from emnist_cnn.errors import ConfigError
from emnist_cnn.models import EmnistModel, count_parameters, create_model, list_models, register
from emnist_cnn.models.registry import reads

# Parameters at 10 and 47 classes; the README's model table quotes the 47-class column (and cnn3 at 36: 425,380).
PARAMETERS = {"cnn3": (422_026, 426_799), "tiny-cnn": (1_138, 4_875), "fast-cnn": (104_426, 147_087),
              "fast-cnn-s": (29_178, 50_527), "fast-cnn-xs": (13_114, 42_751), "vgg-emnist": (289_130, 331_791),
              "vgg-emnist-wide": (641_050, 705_023), "resnet-emnist": (1_505_258, 1_514_767),
              "resnet18": (11_175_370, 11_194_351), "crnn": (666_475, 675_984),
              "crnn-wide": (1_279_467, 1_293_712)}


def example_input(model, n: int) -> torch.Tensor:
    """What the model reads: n 28×28 characters, or n lines of its height, 64 columns wide."""
    return torch.randn(n, 1, model.height, 64) if model.reads == "line" else torch.randn(n, 1, 28, 28)


def outputs(model, n: int, num_classes: int) -> tuple:
    """A character model scores each class; a line model each class and CTC's blank at every 4th column."""
    return (n, 64 // model.stride, num_classes + 1) if model.reads == "line" else (n, num_classes)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("num_classes", [10, 47])
def test_every_model(name, num_classes):
    torch.manual_seed(0)
    model = create_model(name, num_classes)
    x = example_input(model, 4)
    model.train()
    out = model(x)
    assert out.shape == outputs(model, 4, num_classes) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b)  # eval mode is deterministic (no dropout)
    assert count_parameters(model) == PARAMETERS[name][[10, 47].index(num_classes)]


@pytest.mark.parametrize("name", list_models())
def test_every_model_keeps_the_contract(name):
    torch.manual_seed(0)
    model = create_model(name, 10).eval()
    assert isinstance(model, EmnistModel) and isinstance(model.classifier[-1], torch.nn.Linear)
    x = example_input(model, 2)
    features = model.forward_features(x)
    assert torch.equal(model.classifier(features), model(x))
    # Grad-CAM explains a layer on the main path with a spatial map, never a projection shortcut
    target = model.get_submodule(model.gradcam_layer)
    assert "shortcut" not in model.gradcam_layer
    seen = {}
    target.register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    model(x)
    assert seen["out"].ndim == 4 and seen["out"].shape[0] == 2
    model.reset_classifier(3)
    assert model(x).shape == outputs(model, 2, 3) and torch.equal(model.forward_features(x), features)
    model.freeze_stages(1)
    first, rest = model.stages()[0], model.stages()[1:]
    assert all(not p.requires_grad for m in first for p in m.parameters())
    assert all(p.requires_grad for stage in rest for m in stage for p in m.parameters())
    with pytest.raises(ConfigError, match="feature stages"):
        model.freeze_stages(len(model.stages()) + 1)


@pytest.mark.parametrize("name", [n for n in list_models() if reads(n) == "line"])
def test_a_line_model_gives_one_step_per_stride_columns_at_any_width(name):
    # CTC training counts each line's steps as its width // stride (training/lines.py ctc_loss): a model whose
    # convolutions or pools rounded otherwise would score the padding, or lose a line's last step
    model = create_model(name, 10).eval()
    with torch.no_grad():
        for width in (8, 9, 10, 11, 61, 62, 63, 64):
            assert model(torch.zeros(1, 1, model.height, width)).shape[1] == width // model.stride, width


def test_resnet_gradcam_target_is_the_last_block_not_its_shortcut():
    model = create_model("resnet-emnist", 10)
    assert model.gradcam_layer == "features.4"  # stem + 1 + 2 + 1 blocks; features.4.shortcut.0 is a 1x1 conv
    assert type(model.get_submodule(model.gradcam_layer)).__name__ == "BasicBlock"


def test_the_registry_refuses_a_name_registered_twice():
    with pytest.raises(ValueError, match="model name 'cnn3' is registered twice"):
        register("cnn3")(lambda num_classes: None)
    assert "cnn3" in list_models()


def test_what_a_model_reads_is_known_without_building_it():
    assert reads("crnn") == "line" and reads("crnn-wide") == "line" and reads("cnn3") == "character"
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        reads("nope")


def test_cnn3_is_the_original_network():
    assert count_parameters(create_model("cnn3", 36)) == 425_380


def test_tiny_cnn_is_the_described_network():
    # the digits project's README says ~1,274; the layers it describes have 1,138
    assert count_parameters(create_model("tiny-cnn", 10)) == 1_138


def test_unknown_model():
    with pytest.raises(ConfigError, match="unknown model 'nope'; available: .*cnn3"):
        create_model("nope", 10)
