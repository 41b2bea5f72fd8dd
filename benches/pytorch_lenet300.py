"""PyTorch reference for `lth bench`: LeNet-300-100, Adam 1.2e-3, batch 60, with the same
round-1 IMP mask applied to the gradients, on CPU with 2 threads. Prints ms/step and samples/s.

    python3 benches/pytorch_lenet300.py [--steps 500] [--threads 2]

Uses random images of MNIST's shape (throughput does not depend on pixel values).
"""
import argparse
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layers = [torch.nn.Linear(784, 300), torch.nn.Linear(300, 100), torch.nn.Linear(100, 10)]
    model = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2])
    masks = []
    for layer, rate in zip(layers, [0.2, 0.2, 0.1]):
        w = layer.weight.detach().abs().flatten()
        k = round(rate * w.numel())
        threshold = w.kthvalue(k).values
        mask = (layer.weight.detach().abs() > threshold).float()
        layer.weight.data *= mask
        masks.append(mask)
    optimizer = torch.optim.Adam(model.parameters(), lr=1.2e-3, eps=1e-8)
    images = torch.randn(55_000, 784)
    labels = torch.randint(0, 10, (55_000,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(i):
        start = (i * 60) % (55_000 - 60)
        x, y = images[start:start + 60], labels[start:start + 60]
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        for layer, mask in zip(layers, masks):
            layer.weight.grad.mul_(mask)
        optimizer.step()

    for i in range(20):
        step(i)
    begin = time.perf_counter()
    for i in range(args.steps):
        step(20 + i)
    seconds = time.perf_counter() - begin
    print(f"pytorch {torch.__version__} cpu threads={args.threads}: "
          f"{1e3 * seconds / args.steps:.3f} ms/step, {60 * args.steps / seconds:.0f} samples/s")


if __name__ == "__main__":
    main()
