"""Images per second of ddbook's training loop against a straightforward DataLoader loop, measured side by side.

    python benchmarks/train_loop.py [--width 16] [--epochs 2] [--repeats 3] [--device auto]

Both loops train the same ConvNet-3 (same initialisation, SGD lr 0.01, momentum 0.9, wd 5e-4, batch 256) on the
mnist5k training set; the repeats alternate between the two so that machine noise hits both alike. The ratio of the
medians is the figure to quote.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ddbook.core import get_device, make_generator, seeded
from ddbook.data import get_dataset
from ddbook.models import get_model
from ddbook.train import train_model


def dataloader_loop(net, x, y, epochs, batch_size=256, seed=0):
    "The loop most research code writes: a DataLoader over a TensorDataset on the host, each batch moved to the device."
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    dl = DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=batch_size, shuffle=True, generator=make_generator(seed))
    dev = next(net.parameters()).device
    net.train()
    for _ in range(epochs):
        for xb, yb in dl:
            xb, yb = xb.to(dev), yb.to(dev)
            loss = F.cross_entropy(net(xb), yb)
            opt.zero_grad(); loss.backward(); opt.step()


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    a = ap.parse_args()
    dev = get_device(a.device)
    data = get_dataset("mnist5k").to(dev)
    x, y = data.x_train, data.y_train
    make = lambda: get_model("ConvNet", 1, 10, (28, 28), width=a.width).to(dev)
    times = {"ddbook": [], "dataloader": []}
    for r in range(a.repeats + 1):  # the first round warms up and is not counted
        for name in times:
            with seeded(r): net = make()
            sync(dev); t0 = time.perf_counter()
            if name == "ddbook": train_model(net, x, y, a.epochs, generator=make_generator(r))
            else: dataloader_loop(net, x, y, a.epochs, seed=r)
            sync(dev); dt = time.perf_counter() - t0
            if r: times[name].append(dt)
    n = len(x) * a.epochs
    ips = {k: n / statistics.median(v) for k, v in times.items()}
    print(f"device {dev}, ConvNet-3 width {a.width}, {len(x)} images x {a.epochs} epochs, {a.repeats} repeats")
    for k, v in ips.items(): print(f"{k:>11}: {v:8.0f} images/s")
    print(f"ratio ddbook / dataloader: {ips['ddbook'] / ips['dataloader']:.2f}x")


if __name__ == "__main__":
    main()
