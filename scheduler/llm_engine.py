"""LLM engine: one thread owns a ContinuousBatchingPipeline and loops admit -> step -> read.

Only this thread calls `add_request`, `cancel` and `step`. Requests wait in a bounded queue until
the pipeline has a free sequence slot (`max_num_seqs`, enforced here because GenAI ignores it while
`dynamic_split_fuse` is on); a full queue raises `Overloaded` (HTTP 503).

Burst admission: requests that arrive less than `admission_window_ms` apart are gathered and
admitted together before the next step (waiting at most `BURST_WINDOWS` windows), so that clients
starting together prefill in one step, as they would in process (README, "Burst admission").
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import openvino as ov
import openvino_genai as ov_genai

from servables.detokenizer import SequenceText, decode_all, decode_steps
from servables.errors import InferenceError, InvalidRequest, ModelUnavailable, Overloaded
from servables.llm import LLMJob, LLMServable
from servables.lora import SEPARATOR

from .arbiter import lane_for
from .bridge import RequestStream, deliver_batch, wait_until_idle
from .events import Chunk, Event, Failed, RequestDone, SequenceDone
from .telemetry import sink

log = logging.getLogger(__name__)

Status = ov_genai.GenerationStatus
FinishReason = ov_genai.GenerationFinishReason
_UNSET = object()
BURST_WINDOWS = 8  # the longest a burst is gathered, in windows
LOOP_WAIT_S = 0.05  # the longest the engine waits for the event loop to write a step's events
_FINISH = {FinishReason.STOP: "stop", FinishReason.LENGTH: "length", FinishReason.TOOL_CALL: "stop"}
_Outbox = list[tuple[RequestStream, list[Event]]]  # one step's events, per stream


@dataclass
class _Request:
    id: int
    job: LLMJob
    stream: RequestStream
    loop: asyncio.AbstractEventLoop
    handle: ov_genai.GenerationHandle | None = None
    fanned: list[ov_genai.GenerationHandle] = field(default_factory=list)  # one request per choice (streamed n > 1)
    seqs: dict[int, SequenceText] = field(default_factory=dict)
    done: dict[int, SequenceDone] = field(default_factory=dict)
    submitted_at: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None

    @property
    def live(self) -> ov_genai.GenerationHandle:
        """The pipeline's handle of an admitted request (every request in `_live` has one)."""
        assert self.handle is not None, f"request {self.id} was not admitted"
        return self.handle

    def handles(self) -> list[tuple[int | None, ov_genai.GenerationHandle]]:
        """(choice index, or None when the handle's outputs carry their own indices; handle)."""
        if self.fanned:
            return list(enumerate(self.fanned))
        return [(None, self.live)]

    def cancel(self) -> None:
        for _index, handle in self.handles():
            handle.cancel()

    def status(self) -> ov_genai.GenerationStatus:
        """RUNNING while any of its handles runs; otherwise FINISHED, or the first other final status."""
        statuses = [handle.get_status() for _index, handle in self.handles()]
        if Status.RUNNING in statuses:
            return Status.RUNNING
        return next((s for s in statuses if s != Status.FINISHED), Status.FINISHED)


# Tokens per KV-cache block by device: OpenVINO GenAI's paged attention uses 32 on CPU (measured:
# the dynamic cache grows by one block per 32 prompt tokens) and 16 on GPU.
KV_BLOCK_SIZE = {"CPU": 32, "GPU": 16}


@dataclass
class CacheGeometry:
    """The KV cache in vLLM's terms (`vllm:cache_config_info`): tokens per block and bytes per block."""

    block_size: int | None
    block_bytes: int


@dataclass
class EngineStats:
    running: int
    waiting: int
    pipeline_has_requests: bool
    kv_cache_usage_percent: float
    kv_block_size: int | None = None
    kv_blocks: int | None = None  # blocks allocated now (the capacity; it grows when cache_size is 0)
    speculative_steps: int = 0
    speculative_accepted_tokens: int = 0
    speculative_draft_tokens: int = 0
    lora_adapter_switches: int = 0
    kv_cache_bytes: int = 0
    admission_batches: int = 0
    admitted_requests: int = 0
    # LoRA (vLLM's `vllm:lora_requests_info`): adapters that can be active at once (0 = served without
    # adapters; the pipeline holds one), and the model ids (`<model>:<adapter>`) of running / waiting requests
    max_lora: int = 0
    running_lora_adapters: list[str] = field(default_factory=list)
    waiting_lora_adapters: list[str] = field(default_factory=list)


@dataclass
class _Speculation:
    """Speculative decoding counters. The batching pipeline reports no acceptance, so it is read off the
    output: a verification step yields the accepted draft tokens plus one token of the main model, so
    accepted = tokens - steps. Drafted is what was asked for (`num_assistant_tokens` per step): exact for a
    draft model with a fixed count, an upper bound for prompt lookup (no n-gram match drafts nothing); the
    confidence-threshold mode drafts a varying number and is not counted as drafted."""

    steps: int = 0
    accepted: int = 0
    drafted: int = 0

    def record(self, job: LLMJob, new_tokens: int) -> None:
        self.steps += 1
        self.accepted += new_tokens - 1
        self.drafted += job.config.num_assistant_tokens or 0


class LLMEngine:
    def __init__(self, servable: LLMServable, max_queue_size: int | None = None, max_running: int | None = None):
        self.servable = servable
        assert servable.pipeline is not None, f"{servable.name}: an engine runs a loaded servable"
        self._pipe: ov_genai.ContinuousBatchingPipeline = servable.pipeline
        self._tok = servable.tokenizer
        self._pieces = servable.token_pieces  # detokenization without a tokenizer call where exact
        self._max_queue = max_queue_size if max_queue_size is not None else servable.options.max_queue_size
        self._max_running = max_running or servable.options.max_num_seqs
        self._cond = threading.Condition()
        self._incoming: deque[_Request] = deque()
        self._cancelled: set[int] = set()
        self._live: dict[int, _Request] = {}
        self._ids = itertools.count(1)
        self._choice_ids = itertools.count(2**40)  # pipeline ids of fanned-out choices, apart from request ids
        self._stopping = False
        self._admitting = 0  # popped from the queue, not yet live (keeps drain() from returning early)
        self._thread = threading.Thread(target=self._run, name=f"llm-engine:{servable.name}", daemon=True)
        self._lane = lane_for(servable)  # the device arbiter's queue for this engine's steps
        self._geometry: CacheGeometry | None = None
        self._window = servable.options.admission_window_ms / 1000.0
        self._speculation = _Speculation()
        self._admission_batches = 0  # admissions before a step, and the requests they took (burst admission)
        self._admitted_requests = 0
        # LoRA: the pipeline holds one adapter at a time; requests are admitted in groups per adapter
        self._grouped = getattr(servable, "lora", None) is not None
        self._adapter: object = _UNSET  # unknown until the first switch
        self._adapter_switches = 0

    def start(self) -> None:
        self._thread.start()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued and running request has finished (new submits are still taken).

        Used before `stop()` when a model is unloaded or replaced, so that no request in flight fails.
        Returns False when `timeout` passed first.
        """
        with self._cond:
            return self._cond.wait_for(self._idle, timeout)

    def _idle(self) -> bool:
        return self._stopping or not (self._incoming or self._live or self._admitting)

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._lane.close()

    # --- asyncio side -------------------------------------------------------------------

    def submit(self, job: LLMJob) -> RequestStream:
        """Queue a prepared job; returns its event stream. Raises Overloaded when the queue is full."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._stopping:
                raise ModelUnavailable(f"Model {self.servable.name} is shutting down")
            if len(self._incoming) >= self._max_queue:
                sink().request_rejected(self.servable.name)
                raise Overloaded(
                    f"Model {self.servable.name} has {len(self._incoming)} requests waiting; retry later"
                )
            request_id = next(self._ids)
            stream = RequestStream(request_id, loop, self.cancel)
            self._incoming.append(_Request(request_id, job, stream, loop))
            self._cond.notify_all()
        return stream

    def cancel(self, request_id: int) -> None:
        """Thread-safe: the engine thread cancels the handle (freeing its KV cache) on its next turn."""
        with self._cond:
            for queued in self._incoming:
                if queued.id == request_id:
                    self._incoming.remove(queued)
                    self._cond.notify_all()
                    return
            self._cancelled.add(request_id)
            self._cond.notify_all()

    def stats(self) -> EngineStats:
        with self._cond:
            waiting = len(self._incoming)
            waiting_adapters = self._adapter_ids(r.job for r in self._incoming) if self._grouped else []
        live = list(self._live.values())  # one C-level copy: the engine thread may change the map meanwhile
        running = len(live)
        metrics = self._pipe.get_metrics()
        has_requests = self._pipe.has_non_finished_requests()
        # the pipeline reports the usage of its last step, which stays up after the last request ended
        usage = float(metrics.cache_usage) if running or has_requests else 0.0
        geometry = self._geometry
        blocks = metrics.kv_cache_size_in_bytes // geometry.block_bytes if geometry else None
        return EngineStats(
            running=running, waiting=waiting, pipeline_has_requests=has_requests, kv_cache_usage_percent=usage,
            kv_block_size=geometry.block_size if geometry else None, kv_blocks=blocks,
            speculative_steps=self._speculation.steps,
            speculative_accepted_tokens=self._speculation.accepted,
            speculative_draft_tokens=self._speculation.drafted,
            lora_adapter_switches=self._adapter_switches,
            kv_cache_bytes=int(metrics.kv_cache_size_in_bytes),
            admission_batches=self._admission_batches, admitted_requests=self._admitted_requests,
            max_lora=1 if self._grouped else 0,
            running_lora_adapters=self._adapter_ids(r.job for r in live) if self._grouped else [],
            waiting_lora_adapters=waiting_adapters,
        )

    def _adapter_ids(self, jobs: Iterable[LLMJob]) -> list[str]:
        """The distinct adapters of `jobs` as model ids, in order of first appearance (base-model jobs skipped)."""
        names = dict.fromkeys(job.adapter for job in jobs if job.adapter is not None)
        return [f"{self.servable.name}{SEPARATOR}{name}" for name in names]

    def _measure_cache(self) -> None:
        """One 1-token request, one step: the prompt takes exactly one block, so the step's cache usage
        (percent of the allocated blocks) gives the number of blocks and thus the bytes per block."""
        if self.servable.accepts_images or self.servable.speculative.value != "none":
            # a VLM pipeline takes no token-id request and a speculative one needs assistant options;
            # a probe that fails inside step() can leave the pipeline unusable: these report no geometry
            log.info("%s: KV cache geometry not measured (vision or speculative pipeline)", self.servable.name)
            return
        config = ov_genai.GenerationConfig()
        config.max_new_tokens = 1
        try:
            handle = self._pipe.add_request(0, ov.Tensor(np.zeros((1, 1), dtype=np.int64)), config)
            with self._lane.unit():
                self._pipe.step()
            metrics = self._pipe.get_metrics()
            handle.cancel()
            while self._pipe.has_non_finished_requests():
                with self._lane.unit():
                    self._pipe.step()
            if metrics.cache_usage > 0 and metrics.kv_cache_size_in_bytes > 0:
                blocks = max(1, round(100.0 / metrics.cache_usage))
                device = self.servable.options.device.split(".")[0].upper()
                self._geometry = CacheGeometry(KV_BLOCK_SIZE.get(device), metrics.kv_cache_size_in_bytes // blocks)
        except Exception:  # no cache_config_info then; serving goes on
            log.warning("%s: could not measure the KV cache geometry", self.servable.name, exc_info=True)

    # --- engine thread ------------------------------------------------------------------

    def _run(self) -> None:
        self._measure_cache()
        while True:
            with self._cond:
                while not (self._stopping or self._incoming or self._cancelled or self._live
                           or self._pipe.has_non_finished_requests()):
                    self._cond.wait()
                if self._stopping:
                    break
                if self._incoming and self._window > 0:
                    self._gather_burst()
                admitted: list[_Request] = []
                switch_to: list[str | None] = []  # the adapter to switch to, once the active group has drained
                while self._incoming and len(self._live) + len(admitted) < self._max_running:
                    if self._grouped and self._incoming[0].job.adapter != self._adapter:
                        if not (self._live or admitted or self._pipe.has_non_finished_requests()):
                            switch_to.append(self._incoming[0].job.adapter)
                        break  # first in line needs other weights: admit no more of this group
                    admitted.append(self._incoming.popleft())
                self._admitting = len(admitted)
                cancelled, self._cancelled = self._cancelled, set()
            outbox: _Outbox = []
            if switch_to:
                self._switch_adapter(switch_to[0], outbox)
            if admitted:
                self._admission_batches += 1
                self._admitted_requests += len(admitted)
                log.debug("%s: admitting %d request(s), %d running", self.servable.name, len(admitted), len(self._live))
            for request in admitted:
                self._admit(request, outbox)
            self._admitting = 0
            for request_id in cancelled:
                dropped = self._live.pop(request_id, None)
                if dropped is not None:
                    dropped.cancel()
            try:
                if self._live or self._pipe.has_non_finished_requests():
                    with self._lane.unit():
                        self._pipe.step()
                self._collect(outbox)
            except Exception as exc:  # a failed step fails everything in flight, the engine goes on
                log.exception("step failed on %s", self.servable.name)
                for request in self._live.values():
                    request.cancel()
                    outbox.append((request.stream, [Failed(InferenceError(f"Generation failed: {exc}"))]))
                self._live.clear()
            for loop in self._flush(outbox):
                wait_until_idle(loop, LOOP_WAIT_S)  # step() keeps the GIL: let the loop write first
            with self._cond:
                if self._idle():
                    self._cond.notify_all()  # wakes drain()
        self._shutdown()

    def _switch_adapter(self, adapter: str | None, outbox: _Outbox) -> None:
        """Give the pipeline `adapter`'s weights (None = base); nothing is in flight (servables/lora.py)."""
        started = time.monotonic()
        try:
            with self._lane.unit():
                self.servable.switch_adapter(adapter)
        except Exception as exc:  # the requests for this adapter fail, the others go on
            log.exception("%s: cannot switch to LoRA adapter %s", self.servable.name, adapter)
            self._adapter = _UNSET
            with self._cond:
                failing = [r for r in self._incoming if r.job.adapter == adapter]
                for request in failing:
                    self._incoming.remove(request)
            error = Failed(InferenceError(f"Cannot switch to LoRA adapter {adapter}: {exc}"))
            outbox.extend((request.stream, [error]) for request in failing)
            return
        self._adapter = adapter
        self._adapter_switches += 1
        log.debug("%s: switched to adapter %s in %.1f ms", self.servable.name, adapter,
                  (time.monotonic() - started) * 1000)

    def _gather_burst(self) -> None:
        """With the lock held: wait while requests keep arriving less than a window apart and slots are free."""
        cap = time.monotonic() + BURST_WINDOWS * self._window
        while not self._stopping and self._incoming and len(self._incoming) + len(self._live) < self._max_running:
            remaining = min(self._incoming[-1].submitted_at + self._window, cap) - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _admit(self, request: _Request, outbox: _Outbox) -> None:
        try:
            request.handle = self._add_request(request)
        except Exception as exc:
            outbox.append((request.stream, [Failed(InvalidRequest(f"Cannot start generation: {exc}"))]))
            return
        request.seqs = {i: SequenceText() for i in range(request.job.num_sequences)}
        self._live[request.id] = request

    def _add_request(self, request: _Request) -> ov_genai.GenerationHandle:
        if request.job.fan_out:
            request.fanned = self._add_fanned(request)
            return request.fanned[0]
        return self._add_one(request.id, request.job)

    def _add_fanned(self, request: _Request) -> list[ov_genai.GenerationHandle]:
        """A streamed request for n > 1 sampled choices as n one-choice requests with seeds seed, seed+1, ...

        openvino_genai makes a request's outputs readable only once all its sequences have finished
        (`can_read()` stays false until then), so `n > 1` in one request streamed nothing until the end. The
        pipeline copies the config in `add_request`, so one config is adjusted per choice and then restored.
        """
        cfg = request.job.config
        seed, count = cfg.rng_seed, cfg.num_return_sequences
        handles: list[ov_genai.GenerationHandle] = []
        try:
            cfg.num_return_sequences = 1
            for choice in range(count):
                cfg.rng_seed = (seed + choice) % 2**63
                handles.append(self._add_one(next(self._choice_ids), request.job))
        except Exception:
            for handle in handles:
                handle.cancel()
            raise
        finally:
            cfg.num_return_sequences, cfg.rng_seed = count, seed
        return handles

    def _add_one(self, request_id: int, job: LLMJob) -> ov_genai.GenerationHandle:
        if job.videos:  # a model that takes video: GenAI's images + videos overload
            return self._pipe.add_request(request_id, job.prompt_text, job.images or [], job.videos, job.config,
                                          videos_metadata=job.videos_metadata)
        if job.images is not None:  # a vision-language model: templated text plus its images (maybe none)
            return self._pipe.add_request(request_id, job.prompt_text, job.images, job.config)
        return self._pipe.add_request(request_id, job.input_tensor(), job.config)

    @staticmethod
    def _count_prompt(request: _Request) -> None:
        """Vision-language jobs: the pipeline's own prompt count, image tokens included."""
        if request.job.images is None:
            return
        try:
            counted = request.live.get_perf_metrics().get_num_input_tokens()
        except Exception:  # metrics are informative; the text count stays
            return
        if counted > 0:
            request.job.pipeline_prompt_tokens = int(counted)

    def _collect(self, outbox: _Outbox) -> None:
        pending: list[tuple[_Request, int, SequenceText, list[int], list[float] | None, bool]] = []
        finished: list[_Request] = []
        by_id = dict(self._live)
        for request in self._live.values():
            status = request.status()
            for choice, handle in request.handles():
                if request.job.beam_search or not handle.can_read():
                    continue
                for own_index, output in handle.read().items():
                    index = own_index if choice is None else choice
                    seq = request.seqs.setdefault(index, SequenceText())
                    new_ids = list(output.generated_ids)
                    if request.job.speculative and new_ids and seq.ids:  # the prefill step drafts nothing
                        self._speculation.record(request.job, len(new_ids))
                    seq.ids.extend(new_ids)
                    if new_ids and request.first_token_at is None:
                        request.first_token_at = time.monotonic()
                    logprobs = list(output.generated_log_probs) if request.job.logprobs else None
                    final = output.finish_reason != FinishReason.NONE
                    if final:
                        count = self._count(request, seq.ids, output)
                        request.done[index] = SequenceDone(index, _FINISH.get(output.finish_reason, "stop"), count)
                        if count < len(seq.ids) and new_ids:  # the EOS that ended it is not part of the output
                            new_ids = new_ids[:-1]
                            logprobs = logprobs[:-1] if logprobs else logprobs
                    pending.append((request, index, seq, new_ids, logprobs, final))
            if status != Status.RUNNING:
                finished.append(request)
        texts = decode_steps(self._tok, [p[2] for p in pending], [p[5] for p in pending], self._pieces)
        events: dict[int, list[Event]] = {}
        for (request, index, _seq, new_ids, logprobs, final), text in zip(pending, texts, strict=False):
            bucket = events.setdefault(request.id, [])
            if text or logprobs:
                bucket.append(Chunk(index, text, new_ids, logprobs))
            if final:
                bucket.append(request.done[index])
        for request in finished:
            bucket = events.setdefault(request.id, [])
            bucket.extend(self._finish(request))
            del self._live[request.id]
        for request_id, bucket in events.items():
            if bucket:
                outbox.append((by_id[request_id].stream, bucket))

    def _finish(self, request: _Request) -> list[Event]:
        status = request.status()
        self._count_prompt(request)
        if request.job.beam_search and status == Status.FINISHED:
            return self._finish_beams(request)
        if status != Status.FINISHED or not request.done:
            return [Failed(InvalidRequest(
                f"The request was dropped by the pipeline (status {status.name}): the prompt of "
                f"{request.job.prompt_tokens} tokens does not fit in the KV cache; raise cache_size"
            ))]
        events: list[Event] = []
        for index in request.seqs:  # sequences whose end we did not see in a read
            if index not in request.done:
                request.done[index] = SequenceDone(index, "stop", len(request.seqs[index].ids))
                events.append(request.done[index])
        completion = sum(d.completion_tokens for d in request.done.values())
        events.append(RequestDone(request.job.prompt_tokens, completion))
        self._report(request, completion)
        return events

    def _report(self, request: _Request, completion: int) -> None:
        now = time.monotonic()
        first = request.first_token_at
        ttft = first - request.submitted_at if first is not None else None
        tpot = (now - first) / (completion - 1) if first is not None and completion > 1 else None
        sink().generation_finished(self.servable.name, request.job.prompt_tokens, completion, ttft, tpot,
                                   now - request.submitted_at)

    def _finish_beams(self, request: _Request) -> list[Event]:
        events: list[Event] = []
        completion = 0
        for index, output in enumerate(request.live.read_all()[: request.job.num_sequences]):
            ids = list(output.generated_ids)
            count = self._count(request, ids, output)
            completion += count
            logprobs = list(output.generated_log_probs)[:count] if request.job.logprobs else None
            events.append(Chunk(index, decode_all(self._tok, ids), ids[:count], logprobs))
            events.append(SequenceDone(index, _FINISH.get(output.finish_reason, "stop"), count))
        events.append(RequestDone(request.job.prompt_tokens, completion))
        self._report(request, completion)
        return events

    @staticmethod
    def _count(request: _Request, ids: list[int], output) -> int:
        """Completion tokens, not counting the EOS/stop token that ended the sequence."""
        if (ids and output.finish_reason == FinishReason.STOP and ids[-1] in request.job.stop_token_ids
                and not request.job.config.ignore_eos):
            return len(ids) - 1
        return len(ids)

    @staticmethod
    def _flush(outbox: _Outbox) -> list[asyncio.AbstractEventLoop]:
        """Deliver one step's events, one wake-up per event loop; returns those loops."""
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for stream, events in outbox:
            by_loop.setdefault(stream._loop, []).append((stream, events))
        for loop, batch in by_loop.items():
            deliver_batch(loop, batch)
        return list(by_loop)

    def _shutdown(self) -> None:
        error = Failed(ModelUnavailable(f"Model {self.servable.name} was unloaded"))
        outbox: _Outbox = []
        with self._cond:
            waiting, self._incoming = list(self._incoming), deque()
        for request in list(self._live.values()) + waiting:
            if request.handle is not None:
                request.cancel()
            outbox.append((request.stream, [error]))
        self._live.clear()
        self._flush(outbox)
