"""mammo_helpers.xai.relus: the modules that stop captum's DeepLIFT are named (in place,
called twice, registered twice), and the untied copy computes the same function, passes the
check, pickles, and gives DeepLIFT attributions that sum to F(x) - F(0), on hand-made models
and on torchvision's ResNet-18."""

import contextlib
import copy
import pickle

import pytest
import torch
from torch import nn

import mammo_helpers as mh

attribution, relus = mh.xai.attribution, mh.xai.relus


@contextlib.contextmanager
def _seeded(seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _image(h, w):
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(0))


class PairNet(nn.Module):
    """Two convolutions, each with its own ReLU: what DeepLIFT can run on."""

    def __init__(self):
        super().__init__()
        with _seeded(0):
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
            self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x).mean((2, 3)))


class ReusesItsReLU(nn.Module):
    """Calls ``self.relu`` twice, as torchvision's ResNet blocks do."""

    def __init__(self, inplace=False):
        super().__init__()
        with _seeded(0):
            self.conv1, self.conv2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
            self.fc = nn.Linear(4, 2)
        self.relu = nn.ReLU(inplace=inplace)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x) - 0.1)
        return self.fc(x.mean((2, 3)))


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        with _seeded(0):
            self.conv, self.fc = nn.Conv2d(3, 2, 3), nn.Linear(2, 2)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def _shared_relu_sequential():
    relu = nn.ReLU()
    with _seeded(1):
        convs = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Linear(4 * 8 * 8, 2)
    return nn.Sequential(convs[0], relu, convs[1], relu, nn.Flatten(), convs[2])


def test_check_relus_names_in_place_and_reused_modules():
    x = _image(12, 12)[None]
    with pytest.raises(ValueError, match=r"act run in place \(inplace=True\)"):
        relus.check_relus(InPlace().eval(), x)
    with pytest.raises(ValueError, match=r"relu \(2 calls\) used more than once"):
        relus.check_relus(ReusesItsReLU().eval(), x)
    sequential = _shared_relu_sequential().eval()
    with pytest.raises(ValueError, match=r"1 \(2 calls\)"):
        relus.check_relus(sequential, x)
    with pytest.raises(ValueError, match=r"deeplift: check_relus: relu \(2 calls\)"):
        attribution.explain("deeplift", ReusesItsReLU().eval(), x, 1)
    relus.check_relus(PairNet().eval(), x)  # one module per call: passes


@pytest.mark.parametrize("build", [ReusesItsReLU, InPlace, _shared_relu_sequential])
def test_untie_relus_keeps_the_function_and_passes_the_check(build):
    model, x = build().eval(), _image(12, 12)[None]
    with torch.no_grad():
        before = model(x)
    untied = relus.untie_relus(model, x)
    relus.check_relus(untied, x)
    with torch.no_grad():
        assert torch.equal(untied(x), before) and torch.equal(untied(x), before)  # twice
    e = attribution.explain("deeplift", untied, x, 1)
    assert e.info["completeness_gap"] < 1e-4  # DeepLIFT sums to F(x) - F(0)
    with pytest.raises(ValueError, match="check_relus"):  # the original is left alone
        relus.check_relus(model, x)
    again = pickle.loads(pickle.dumps(untied))  # saved and loaded, it still works
    relus.check_relus(again, x)
    with torch.no_grad():
        assert torch.equal(again(x), before)


def test_untie_relus_on_torchvision_resnet18():
    import torchvision

    with _seeded(0):
        resnet = torchvision.models.resnet18(weights=None, num_classes=2).eval()
        x = torch.rand(1, 3, 32, 32)
    reused = r"layer1\.0\.relu \(2 calls\), .*layer4\.1\.relu \(2 calls\) used more than once"
    with pytest.raises(ValueError, match=reused):
        relus.check_relus(resnet, x)
    resnet_out_of_place = copy.deepcopy(resnet)
    for module in resnet_out_of_place.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    with pytest.raises(ValueError, match=reused):  # in place or not, the reuse is found
        relus.check_relus(resnet_out_of_place, x)
    untied = relus.untie_relus(resnet, x)
    relus.check_relus(untied, x)
    relus.check_relus(untied)  # the default example (1, 3, 64, 64) as well
    with torch.no_grad():
        assert torch.allclose(untied(x), resnet(x), atol=1e-6)
        y = torch.rand(2, 3, 48, 40)
        assert torch.allclose(untied(y), resnet(y), atol=1e-6)
    e = attribution.explain("deeplift", untied, x, 1)
    assert e.forwards == 2 and e.info["completeness_gap"] < 1e-4
    assert resnet.relu.inplace and resnet.layer1[0].relu.inplace  # the original untouched
