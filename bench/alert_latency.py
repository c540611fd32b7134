"""Alert latency: from a violating event's production to the notification, measured end to end.

    python bench/alert_latency.py --json                      # 60 s at 1,000 events/s, 2% violating
    python bench/alert_latency.py --seconds 120 --rate 1000 --json

One process hosts the audit consumer and the alert dispatcher sharing the embedded ClickHouse (as
``privaudit run --alerting`` does); the local broker and a real Alertmanager (Debian's
prometheus-alertmanager) run as their own processes; the steady producer runs in a process of its
own and notes when it sent each event. The dispatcher routes every group to a local webhook
receiver and to Alertmanager. For each notification (the first violation of each group; later
ones only raise its count), latency is measured

- ``webhook``: from the send of the event named in the notification to the receiver's arrival time;
- ``alertmanager``: from the same send to the first time the alert is listed by Alertmanager's API
  (``GET /api/v2/alerts``, polled every 50 ms, so up to 50 ms of it is the polling).

Grouping uses ``--group-window`` (default 5 minutes of event time, shorter than the shipped hour,
so a minute's run yields hundreds of groups to measure) and the shipped ``group_wait`` of 1 s,
which is in every figure. Goal (alerting issue): p99 <= 5 s for both.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from privaudit.bus import LocalBroker, ensure_topics, make_producer
from privaudit.consumers import ConsumerConfig
from privaudit.consumers.alerting import parse_alerting
from privaudit.consumers.alerting.local import LocalAlertmanager, WebhookReceiver
from privaudit.consumers.alerting.service import make_dispatcher
from privaudit.consumers.service import run_consumers
from privaudit.policy import load_policy
from privaudit.producers.simulator import SimulationConfig, simulate
from privaudit.schemas import Codec
from privaudit.settings import TOPIC_EVENTS
from privaudit.store import Store

PARTITIONS = 6


def _producer(bootstrap: str, n: int, rate: float, seed: int, out: str) -> None:
    codec = Codec()
    frames = [(e.event_id, e.subject_id.encode(), codec.encode(e))
              for e in simulate(SimulationConfig(events=n, seed=seed, violation_rate=0.02), load_policy())]
    producer = make_producer("confluent", bootstrap)
    sent: dict[str, float] = {}
    began = time.monotonic()
    for i, (event_id, key, value) in enumerate(frames):
        sent[event_id] = time.time()
        producer.send(TOPIC_EVENTS, value, key=key)
        ahead = (i + 1) / rate - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(ahead)
    producer.flush(60)
    producer.close()
    Path(out).write_text(json.dumps(sent))


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    s = sorted(values)
    return {"n": len(s), "p50_ms": round(statistics.median(s) * 1000),
            "p99_ms": round(s[max(0, int(len(s) * 0.99) - 1)] * 1000),
            "max_ms": round(s[-1] * 1000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--group-window", default="5m")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")):
        sys.exit("needs Debian's prometheus-alertmanager (apt-get install prometheus-alertmanager)")
    work = Path(tempfile.mkdtemp(prefix="privaudit-alert-bench-"))
    n = int(args.rate * args.seconds)
    try:
        with LocalBroker(log=work / "broker.log") as broker, WebhookReceiver() as hook, \
                WebhookReceiver() as am_hook, LocalAlertmanager(am_hook.url, log=work / "am.log") as am:
            ensure_topics(broker.bootstrap, PARTITIONS)
            config = parse_alerting({
                "group_window": args.group_window, "group_wait": "1s",
                "sinks": {"am": {"type": "alertmanager", "url": am.url},
                          "hook": {"type": "webhook", "url": hook.url, "unsigned": True}},
                "routes": [{"sinks": ["am", "hook"]}],
            })
            store = Store.connect(f"chdb://{work / 'clickhouse'}")
            store.migrate()
            dispatcher = make_dispatcher(config, broker.bootstrap, store)
            stop, consumers_done = threading.Event(), threading.Event()
            seen_by_am: dict[str, tuple[float, str]] = {}

            def poll_am() -> None:
                while not stop.is_set():
                    now = time.time()
                    with urllib.request.urlopen(f"{am.url}/api/v2/alerts", timeout=5) as r:
                        for alert in json.loads(r.read()):
                            key = alert["labels"].get("group_key", "")
                            seen_by_am.setdefault(key, (now, alert["annotations"].get("event_id", "")))
                    time.sleep(0.05)

            threads = [threading.Thread(target=dispatcher.run, args=(stop,),
                                        kwargs={"idle_exit_s": 5.0, "may_exit": consumers_done.is_set}),
                       threading.Thread(target=poll_am, daemon=True)]
            for t in threads:
                t.start()
            sent_file = work / "sent.json"
            producer = mp.get_context("spawn").Process(
                target=_producer, args=(broker.bootstrap, n, args.rate, args.seed, str(sent_file)))
            producer.start()
            consumer_stop = threading.Event()
            run = threading.Thread(
                target=run_consumers, args=(ConsumerConfig(bootstrap=broker.bootstrap), store, load_policy()),
                kwargs={"partitions": PARTITIONS, "stop": consumer_stop, "progress": False, "idle_exit_s": 5.0})
            began = time.monotonic()
            run.start()
            producer.join()
            run.join()
            consumers_done.set()
            threads[0].join(120)
            time.sleep(0.5)
            stop.set()
            elapsed = time.monotonic() - began
            sent = json.loads(sent_file.read_text())
            hook_lat = [r.at - sent[r.body["event_id"]] for r in hook.snapshot()
                        if r.body and r.body.get("event_id") in sent]
            am_lat = [at - sent[eid] for at, eid in seen_by_am.values() if eid in sent]
            totals = dispatcher.totals
            result = {
                "rate": args.rate, "seconds": args.seconds, "events": n, "violations": totals.violations,
                "groups": totals.groups, "group_window": args.group_window, "group_wait_s": config.group_wait,
                "webhook": _percentiles(hook_lat), "alertmanager": _percentiles(am_lat), "elapsed_s": round(elapsed, 1),
            }
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
