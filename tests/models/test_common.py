import io

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from translate.models.common import EMA, ImagePool, StepCounter, adam, linear_decay_lambda, set_requires_grad


def images(start: int, count: int) -> torch.Tensor:
    """count distinct 3x2x2 images; image k is filled with the value start + k, so outputs can be traced."""
    values = torch.arange(start, start + count, dtype=torch.float32)
    return values.view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()


def ids(batch: torch.Tensor) -> list[int]:
    return [int(v) for v in batch[:, 0, 0, 0]]


def pool_ids(pool: ImagePool) -> list[int]:
    return [int(image[0, 0, 0, 0]) for image in pool.images]


def round_trip(state: dict) -> dict:
    """Through torch.save / torch.load(weights_only=True), as Accelerate's checkpoints go."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# --- ImagePool ----------------------------------------------------------------------------------


def test_pool_size_zero_passes_through():
    batch = images(0, 4)
    assert ImagePool(0).query(batch) is batch


def test_pool_fills_then_swaps():
    torch.manual_seed(0)
    pool = ImagePool(4)
    assert ids(pool.query(images(0, 3))) == [0, 1, 2]  # not full: stored and returned
    assert pool_ids(pool) == [0, 1, 2]
    assert ids(pool.query(images(3, 1))) == [3]
    assert pool_ids(pool) == [0, 1, 2, 3]
    swapped = passed = 0
    next_id = 4
    for _ in range(10):
        before = pool_ids(pool)
        out = ids(pool.query(images(next_id, 3)))
        new = list(range(next_id, next_id + 3))
        # nothing is lost or duplicated: what came in plus what was stored is what went out plus what is stored
        assert sorted(before + new) == sorted(out + pool_ids(pool))
        for got, sent in zip(out, new):
            if got == sent:
                passed += 1
            else:
                assert got in before and sent in pool_ids(pool)
                swapped += 1
        next_id += 3
    assert len(pool.images) == 4
    assert swapped > 5 and passed > 5  # about half and half


def test_pool_is_deterministic_under_the_global_rng():
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        pool = ImagePool(3)
        outputs.append([ids(pool.query(images(4 * k, 4))) for k in range(6)])
    assert outputs[0] == outputs[1]


def test_pool_returns_detached_and_stores_clones():
    pool = ImagePool(2)
    batch = images(0, 2).requires_grad_(True) * 1
    out = pool.query(batch)
    assert not out.requires_grad and not pool.images[0].requires_grad
    with torch.no_grad():
        batch.fill_(9.0)
    assert pool_ids(pool) == [0, 1]


def test_pool_state_round_trip_continues_identically():
    torch.manual_seed(0)
    pool = ImagePool(5)
    for k in range(4):
        pool.query(images(3 * k, 3))
    state = round_trip(pool.state_dict())
    assert state["size"] == 5 and state["images"].shape == (5, 3, 2, 2) and state["images"].device.type == "cpu"
    restored = ImagePool(50)
    restored.load_state_dict(state)
    assert restored.size == 5 and pool_ids(restored) == pool_ids(pool)

    results = []
    for p in (pool, restored):
        torch.manual_seed(11)
        results.append([ids(p.query(images(100 + 3 * k, 3))) for k in range(5)] + [pool_ids(p)])
    assert results[0] == results[1]


def test_empty_pool_state():
    state = round_trip(ImagePool(3).state_dict())
    assert state["images"].numel() == 0
    pool = ImagePool(7)
    pool.load_state_dict(state)
    assert pool.size == 3 and pool.images == []
    assert ids(pool.query(images(0, 2))) == [0, 1]


def test_pool_follows_the_query_dtype():
    torch.manual_seed(0)
    pool = ImagePool(2)
    pool.query(images(0, 2))
    out = pool.query(images(2, 4).bfloat16())
    assert out.dtype == torch.bfloat16 and all(image.dtype == torch.bfloat16 for image in pool.images)


# --- set_requires_grad --------------------------------------------------------------------------


def test_set_requires_grad():
    a, b = nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.Conv2d(1, 1, 1))
    set_requires_grad([a, None, b], False)
    assert not any(p.requires_grad for net in (a, b) for p in net.parameters())
    set_requires_grad(b, True)
    assert all(p.requires_grad for p in b.parameters()) and not a.weight.requires_grad
    set_requires_grad(None, True)  # nothing to do


# --- EMA ----------------------------------------------------------------------------------------


def small_net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def set_weights(net: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)


def test_ema_decay_zero_copies_weights():
    net = small_net()
    ema = EMA(net, decay=0.0)
    set_weights(net, 3.0)
    ema.update(net)
    copy = small_net()
    ema.copy_to(copy)
    for a, b in zip(copy.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)


def test_ema_decay_one_keeps_initial_weights():
    net = small_net()
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    ema = EMA(net, decay=1.0)
    set_weights(net, 3.0)
    ema.update(net)
    for key in ("0.weight", "0.bias", "1.weight"):
        assert torch.equal(ema.shadow[key], initial[key])


def test_ema_known_value_after_two_updates():
    net = small_net()
    set_weights(net, 1.0)
    ema = EMA(net, decay=0.5)
    set_weights(net, 2.0)
    ema.update(net)  # 0.5 * 1 + 0.5 * 2 = 1.5
    set_weights(net, 4.0)
    ema.update(net)  # 0.5 * 1.5 + 0.5 * 4 = 2.75
    assert torch.all(ema.shadow["0.weight"] == 2.75) and torch.all(ema.shadow["1.bias"] == 2.75)


def test_ema_copies_buffers():
    net = small_net()
    ema = EMA(net, decay=0.9)
    net.train()
    net(torch.randn(8, 3))  # BatchNorm updates its running statistics and counter
    ema.update(net)
    bn = net[1]
    assert torch.equal(ema.shadow["1.running_mean"], bn.running_mean)
    assert torch.equal(ema.shadow["1.running_var"], bn.running_var)
    assert ema.shadow["1.num_batches_tracked"].item() == 1


def test_ema_state_round_trip():
    net = small_net()
    ema = EMA(net, decay=0.5)
    set_weights(net, 2.0)
    ema.update(net)
    state = round_trip(ema.state_dict())
    restored = EMA(small_net(), decay=0.9)
    restored.load_state_dict(state)
    assert restored.decay == 0.5
    assert state.keys() == {"decay", "shadow"}
    for key, value in ema.shadow.items():
        assert torch.equal(restored.shadow[key], value)


def test_ema_unwraps_a_wrapped_net():
    net = small_net()
    wrapped = nn.DataParallel(net)  # on a machine without GPUs it only wraps; DDP is unwrapped the same way
    ema = EMA(wrapped, decay=0.0)
    assert set(ema.shadow) == set(net.state_dict())
    set_weights(net, 5.0)
    ema.update(wrapped)
    target = small_net()
    ema.copy_to(target)
    assert torch.all(target[0].weight == 5.0)


# --- schedule, optimizer, step ------------------------------------------------------------------


def test_linear_decay_lambda_values():
    f = linear_decay_lambda(constant_steps=3, decay_steps=4)
    values = [f(step) for step in range(9)]
    assert values == pytest.approx([1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0])


def test_linear_decay_lambda_without_decay():
    f = linear_decay_lambda(constant_steps=5, decay_steps=0)
    assert [f(step) for step in range(5)] == [1.0] * 5 and f(5) == 0.0


def test_lambda_lr_follows_the_rule():
    param = nn.Parameter(torch.zeros(1))
    optimizer = adam([param], lr=2e-4)
    f = linear_decay_lambda(constant_steps=2, decay_steps=3)
    scheduler = LambdaLR(optimizer, f)
    for step in range(5):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * f(step))
        param.grad = torch.ones(1)
        optimizer.step()
        scheduler.step()


def test_adam_defaults():
    optimizer = adam([nn.Parameter(torch.zeros(1))])
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.Adam)
    assert group["lr"] == 2e-4 and group["betas"] == (0.5, 0.999)


def test_step_counter_round_trip():
    counter = StepCounter()
    counter.step = 42
    restored = StepCounter()
    restored.load_state_dict(round_trip(counter.state_dict()))
    assert restored.step == 42
