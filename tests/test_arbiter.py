"""The device arbiter's policies, on real threads (no models): who gets the device next."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from scheduler.arbiter import Arbiter, thread_defaults
from servables.base import ModelSpec
from tests.helpers import wait_for


def _queue_behind(arbiter: Arbiter, lanes, order: list[str]) -> list[threading.Thread]:
    """While the device is held, start one waiter per lane (in the given order); each records its turn."""
    threads = []
    for lane in lanes:
        def run(lane=lane):
            with lane.unit():
                order.append(lane.name)
        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
        wait_for(lambda lane=lane: lane.stats.waiting, 10, 0.001, f"{lane.name} waiting")  # deterministic arrival
    return threads


def _grant_order(policy: str, make_lanes) -> list[str]:
    arbiter = Arbiter(policy, starvation_ms=60_000, overlap_ms=60_000)  # no token step beside the holder
    holder = arbiter.lane("holder", "tensor")
    lanes = make_lanes(arbiter)
    order: list[str] = []
    holder.acquire()
    threads = _queue_behind(arbiter, lanes, order)
    holder.release()
    for thread in threads:
        thread.join(10)
    return order


def test_fair_gives_token_streams_the_device_first():
    order = _grant_order("fair", lambda a: [a.lane("image", "image_generation"), a.lane("embed", "embeddings"),
                                             a.lane("chat", "text_generation")])
    assert order[0] == "chat"


def test_fifo_grants_in_arrival_order():
    order = _grant_order("fifo", lambda a: [a.lane("image", "image_generation"), a.lane("embed", "embeddings"),
                                             a.lane("chat", "text_generation")])
    assert order == ["image", "embed", "chat"]


def test_fair_prefers_the_lane_with_less_weighted_device_time():
    arbiter = Arbiter("fair", starvation_ms=60_000)
    holder = arbiter.lane("holder", "tensor")
    busy, idle = arbiter.lane("busy", "embeddings"), arbiter.lane("idle", "embeddings")
    order: list[str] = []
    holder.acquire()
    threads = _queue_behind(arbiter, [busy, idle], order)
    busy.vtime, idle.vtime = 5.0, 1.0  # as if `busy` had used the device more
    holder.release()
    for thread in threads:
        thread.join(10)
    assert order == ["idle", "busy"]


def test_weights_divide_device_time_between_busy_lanes():
    arbiter = Arbiter("fair", starvation_ms=60_000)
    heavy, light = arbiter.lane("heavy", "embeddings", weight=3), arbiter.lane("light", "embeddings", weight=1)
    stop = threading.Event()

    def work(lane):
        while not stop.is_set():
            with lane.unit():
                time.sleep(0.002)

    threads = [threading.Thread(target=work, args=(lane,)) for lane in (heavy, light)]
    for t in threads:
        t.start()
    wait_for(lambda: heavy.stats.units + light.stats.units >= 200, 30, 0.01, "200 units run")
    stop.set()
    for t in threads:
        t.join(10)
    share = heavy.stats.busy_seconds / (heavy.stats.busy_seconds + light.stats.busy_seconds)
    assert 0.6 < share < 0.9  # about 3/4 of the device time


def test_fair_never_starves_a_low_priority_lane():
    arbiter = Arbiter("fair", starvation_ms=20)
    chat, image = arbiter.lane("chat", "text_generation"), arbiter.lane("image", "image_generation")
    stop = threading.Event()

    def chat_loop():
        while not stop.is_set():
            with chat.unit():
                time.sleep(0.002)

    threads = [threading.Thread(target=chat_loop) for _ in range(3)]  # always a chat unit waiting
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            with image.unit():
                time.sleep(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert image.stats.units == 5 and chat.stats.units > 0


@pytest.mark.parametrize("policy", ["fifo", "fair"])
def test_one_unit_holds_the_device_at_a_time(policy):
    arbiter = Arbiter(policy)
    kinds = ["text_generation", "image_generation", "embeddings", "text_generation"]
    lanes = [arbiter.lane(f"l{i}", kind) for i, kind in enumerate(kinds)]
    inside, peak, lock = [0], [0], threading.Lock()

    def work(lane):
        for _ in range(20):
            with lane.unit():
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.0005)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=work, args=(lane,)) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert peak[0] == 1
    assert all(lane.stats.units == 20 and lane.stats.waiting == 0 and lane.stats.running == 0 for lane in lanes)


def test_off_lets_units_overlap():
    arbiter = Arbiter("off")
    a, b = arbiter.lane("a", "text_generation"), arbiter.lane("b", "image_generation")
    a.acquire()
    done = threading.Event()
    threading.Thread(target=lambda: (b.acquire(), b.release(), done.set())).start()
    assert done.wait(5)
    a.release()


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="fifo"):
        Arbiter("random")


def test_fair_lets_a_token_step_run_next_to_a_long_background_unit():
    arbiter = Arbiter("fair", starvation_ms=60_000, overlap_ms=10)
    image, embed = arbiter.lane("image", "image_generation"), arbiter.lane("embed", "embeddings")
    chat = arbiter.lane("chat", "text_generation")
    image.acquire()  # a long diffusion step that cannot be interrupted
    chat_done, embed_started = threading.Event(), threading.Event()
    threading.Thread(target=lambda: (chat.acquire(), chat.release(), chat_done.set())).start()
    threading.Thread(target=lambda: (embed.acquire(), embed_started.set(), embed.release())).start()
    assert chat_done.wait(5)  # the token step did not wait for the image step to end
    assert not embed_started.wait(0.2)  # another background unit still waits its turn
    image.release()
    assert embed_started.wait(5)


def test_fifo_never_overlaps_even_behind_a_long_unit():
    arbiter = Arbiter("fifo", overlap_ms=1)
    image, chat = arbiter.lane("image", "image_generation"), arbiter.lane("chat", "text_generation")
    image.acquire()
    done = threading.Event()
    threading.Thread(target=lambda: (chat.acquire(), chat.release(), done.set())).start()
    assert not done.wait(0.2)
    image.release()
    assert done.wait(5)


def _priority_inside_unit(lane) -> int:
    """The OS priority (nice) of a fresh thread while it runs one unit of `lane`."""
    seen: list[int] = []

    def run():
        with lane.unit():
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    return seen[0]


@pytest.mark.parametrize("policy", ["fifo", "fair"])
def test_background_units_run_at_the_lower_os_priority_and_token_steps_do_not(policy):
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    arbiter = Arbiter(policy, background_nice=7)
    chat = arbiter.lane("chat", "text_generation")
    for kind in ("image_generation", "embeddings", "rerank", "speech2text", "text2speech"):
        assert _priority_inside_unit(arbiter.lane(kind, kind)) == max(base, 7), kind
    assert _priority_inside_unit(chat) == base
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base  # only the unit's thread changed


def test_background_units_keep_their_priority_without_token_streams_to_protect():
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    arbiter = Arbiter("fair", background_nice=7)
    image = arbiter.lane("image", "image_generation")
    assert _priority_inside_unit(image) == base  # an image-only server: nothing to yield to
    chat = arbiter.lane("chat", "text_generation")
    assert _priority_inside_unit(image) == max(base, 7)  # an LLM was loaded beside it
    chat.close()


def test_off_leaves_thread_priorities_alone():
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert _priority_inside_unit(Arbiter("off", background_nice=7).lane("image", "image_generation")) == base


def test_background_nice_out_of_range_is_refused():
    with pytest.raises(ValueError, match="0..19"):
        Arbiter("fair", background_nice=20)


def test_background_pipelines_keep_every_core_and_lose_only_pinning():
    spec = ModelSpec("sd", Path("/m"), "image_generation")
    assert thread_defaults(spec, "fair", 8).options["plugin_config"] == {"ENABLE_CPU_PINNING": False}
    own = replace(spec, options={"plugin_config": {"INFERENCE_NUM_THREADS": 3}})
    assert thread_defaults(own, "fair", 8).options["plugin_config"] == {"ENABLE_CPU_PINNING": False,
                                                                        "INFERENCE_NUM_THREADS": 3}
    assert thread_defaults(spec, "off", 8) is spec


def test_a_lane_with_long_units_waits_longer_before_it_starves():
    arbiter = Arbiter("fair", starvation_ms=250)
    image, embed = arbiter.lane("image", "image_generation"), arbiter.lane("embed", "embeddings")
    assert arbiter.starvation_wait(image) == 0.25  # no token stream lane: the plain starvation wait
    chat = arbiter.lane("chat", "text_generation")  # weight 8
    image.mean_unit_s, embed.mean_unit_s = 0.2, 0.01  # as if measured: diffusion steps, short embedding batches
    assert arbiter.starvation_wait(image) == 0.2 * 8 / 1  # about 1/9 of the device next to busy token streams
    assert arbiter.starvation_wait(embed) == 0.25  # short units keep the plain wait
    assert arbiter.starvation_wait(chat) == 0.25


def test_a_lane_measures_its_mean_unit():
    arbiter = Arbiter("fair")
    lane = arbiter.lane("image", "image_generation")
    with lane.unit():
        time.sleep(0.05)
    assert lane.mean_unit_s >= 0.05 and lane.mean_unit_s == lane.stats.busy_seconds
