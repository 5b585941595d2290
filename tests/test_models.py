"""One parametrized test over every registered model, plus the parameter counts that pin the originals."""
import pytest
import torch

from emnist_cnn.models import count_parameters, create_model, list_models


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("num_classes", [10, 47])
def test_every_model(name, num_classes):
    torch.manual_seed(0)
    model = create_model(name, num_classes)
    x = torch.randn(4, 1, 28, 28)
    model.train()
    out = model(x)
    assert out.shape == (4, num_classes) and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b)  # eval mode is deterministic (no dropout)
    assert 0 < count_parameters(model) < 30_000_000


def test_cnn3_is_the_original_network():
    assert count_parameters(create_model("cnn3", 36)) == 425_380


def test_tiny_cnn_is_the_described_network():
    # the digits project's README says ~1,274; the layers it describes have 1,138
    assert count_parameters(create_model("tiny-cnn", 10)) == 1_138


def test_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'nope'; available: .*cnn3"):
        create_model("nope", 10)
