"""locust users of the REST API load test (benchmarks/api_load.py starts locust with this file).

50 readers list runs (newest, by workflow, by status) and read one run's detail; 5 deciders each approve the
gate their own keeper keeps waiting (a real RunSession with --gate-wait, in api_load.py), so no two deciders
race for one gate and every answer should be 200. Request names group the endpoints:
`GET runs`, `GET runs/{id}`, `POST runs/{id}/gates/{node}`.
"""

from __future__ import annotations

import itertools
import os
import random

from locust import HttpUser, between, task

TOKEN = os.environ["PLAYBOOK_BENCH_TOKEN"]
RUNS = int(os.environ.get("PLAYBOOK_BENCH_RUNS", "100000"))
WORKFLOWS = int(os.environ.get("PLAYBOOK_BENCH_WORKFLOWS", "20"))
DECIDERS = int(os.environ.get("PLAYBOOK_BENCH_DECIDERS", "5"))
API = "/playbook-nb/api"
_decider_numbers = itertools.count()


class Reader(HttpUser):
    weight = 10
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.client.headers["Authorization"] = f"token {TOKEN}"

    @task(3)
    def list_runs(self):
        choice = random.random()
        if choice < 0.4:
            params = {"limit": 50}
        elif choice < 0.8:
            params = {"workflow": f"Service {random.randrange(WORKFLOWS)}", "limit": 50}
        else:
            params = {"status": random.choice(["OK", "NOK", "ABORTED"]), "limit": 50}
        self.client.get(f"{API}/runs", params=params, name="GET runs")

    @task(2)
    def read_run(self):
        run_id = random.randint(1, RUNS)
        self.client.get(f"{API}/runs/{run_id}", name="GET runs/{id}")


class Decider(HttpUser):
    fixed_count = DECIDERS
    wait_time = between(0.5, 1.5)

    def on_start(self):
        self.client.headers["Authorization"] = f"token {TOKEN}"
        self.keeper = next(_decider_numbers) % DECIDERS

    @task
    def decide(self):
        listed = self.client.get(
            f"{API}/runs",
            params={"workflow": f"Gate keeper {self.keeper}", "status": "RUNNING", "limit": 5},
            name="GET runs",
        )
        waiting = [r["id"] for r in listed.json().get("runs", []) if (r.get("counts") or {}).get("WAITING")]
        if not waiting:
            return  # the keeper is starting its next run
        self.client.post(
            f"{API}/runs/{waiting[0]}/gates/gate",
            json={"decision": "approve", "comment": "load test"},
            name="POST runs/{id}/gates/{node}",
        )
