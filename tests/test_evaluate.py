import pytest
import torch

from emnist_cnn.evaluation import metrics_from_logits


def test_metrics_on_known_logits():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    logits = torch.tensor([[3., 0, 0], [0, 3., 0], [0, 3., 0], [0, 3., 0], [0, 0, 3.], [3., 0, 1.]])
    m = metrics_from_logits(logits, labels, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["top5_accuracy"] == 1.0
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    per = {r["class"]: r for r in m["per_class"]}
    assert per["b"]["precision"] == pytest.approx(2 / 3) and per["b"]["recall"] == 1.0
    assert per["a"]["support"] == 2
    # by hand: class a's positives score e3/(e3+2) and 1/(e3+2); the second ties with three negatives (half each) and
    # loses to [3, 0, 1]: (4 + 1.5) / 8. Class b: 2 positives above 3 negatives, 2 ties: (6 + 1) / 8. Class c: 1.
    assert [r["roc_auc"] for r in m["per_class"]] == pytest.approx([5.5 / 8, 7 / 8, 1.0])
    assert m["roc_auc_macro"] == pytest.approx((5.5 / 8 + 7 / 8 + 1.0) / 3)


def test_roc_auc_uses_probabilities_not_hard_predictions():
    # Same argmax everywhere, but the probabilities rank the positives: AUC from scores is 1.0,
    # AUC from hard 0/1 predictions would be 0.5.
    labels = torch.tensor([1, 1, 0, 0])
    logits = torch.tensor([[0.0, -0.1], [0.0, -0.2], [0.0, -0.9], [0.0, -1.0]])
    m = metrics_from_logits(logits, labels, ["x", "y"])
    assert m["accuracy"] == 0.5
    assert m["per_class"][1]["roc_auc"] == pytest.approx(1.0)


def test_metrics_match_scikit_learn():
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 7, (500,), generator=g)
    labels[labels == 6] = 5  # class 6 never occurs: zero support, zero precision
    logits = torch.randn(500, 7, generator=g) + 2.0 * torch.nn.functional.one_hot(labels, 7)
    logits[:50] = logits[:50].round()  # ties in the scores
    m = metrics_from_logits(logits, labels, list("abcdefg"))
    y, pred = labels.numpy(), logits.argmax(1).numpy()
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=range(7), average=avg, zero_division=0)
        assert (m[f"precision_{avg}"], m[f"recall_{avg}"], m[f"f1_{avg}"]) == pytest.approx((p, r, f))
    assert m["confusion_matrix"] == confusion_matrix(y, pred, labels=range(7)).tolist()
    probs = torch.softmax(logits.double(), 1).numpy()
    for c in range(6):
        assert m["per_class"][c]["roc_auc"] == pytest.approx(roc_auc_score(y == c, probs[:, c]))
    assert m["per_class"][6]["roc_auc"] is None and m["per_class"][6]["support"] == 0
