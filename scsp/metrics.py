"""`/metrics`: Prometheus text exposition of the service's state, read from SQLite at scrape time.

Everything that matters lives in the database (DESIGN.md), so the collector reads it when scraped
instead of keeping counters that a restart would reset; only HTTP request counts and contained faults (`scsp.faults`)
are in-process.
Each app has its own registry (no module-level state).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scsp.store import Store


class StoreCollector(Collector):
    """Gauges and counters computed from the store on every scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families."""
        snapshot = self.store.metrics_snapshot()
        parties = GaugeMetricFamily("scsp_parties", "Connected OCPI platforms by registration status",
                                    labels=["status"])
        for row in snapshot["parties"]:
            parties.add_metric([row["status"]], row["n"])
        yield parties
        unreachable = GaugeMetricFamily("scsp_parties_unreachable", "Registered parties that do not answer")
        unreachable.add_metric([], snapshot["unreachable"][0]["n"] if snapshot["unreachable"] else 0)
        yield unreachable
        sessions = GaugeMetricFamily("scsp_sessions", "Sessions by OCPI status", labels=["status"])
        for row in snapshot["sessions"]:
            sessions.add_metric([row["status"]], row["n"])
        yield sessions
        commands = CounterMetricFamily(
            "scsp_chargingprofile_requests", "ChargingProfiles requests we made, by kind and outcome",
            labels=["kind", "state", "response", "result"])
        for row in snapshot["commands"]:
            commands.add_metric([row["kind"], row["state"], row["response"], row["result"]], row["n"])
        yield commands
        verdicts = CounterMetricFamily("scsp_active_profiles", "ActiveChargingProfiles received, by compliance verdict",
                                       labels=["verdict"])
        for row in snapshot["verdicts"]:
            verdicts.add_metric([row["verdict"]], row["n"])
        yield verdicts
        limit = GaugeMetricFamily("scsp_site_limit_watts", "Import limit in the current slot of each site's plan",
                                  labels=["site"])
        planned = GaugeMetricFamily("scsp_site_planned_watts", "Planned power of the sessions we steer, current slot",
                                    labels=["site"])
        fixed = GaugeMetricFamily("scsp_site_fixed_load_watts", "Load we cannot steer, current slot", labels=["site"])
        age = GaugeMetricFamily("scsp_site_plan_age_seconds", "Seconds since each site was last planned",
                                labels=["site"])
        now = datetime.now(UTC)
        sites = self.store.plans.site_ids()
        for site, plan in sorted(self.store.plans.latest_all().items()):
            if site not in sites:
                continue  # a site no CPO names any more (and nobody declared)
            slot = min(max(int((now - plan.start).total_seconds() // plan.slot_s), 0), plan.n_slots - 1)
            limit.add_metric([site], plan.limit_w[slot])
            planned.add_metric([site], plan.site_power_w[slot])
            fixed.add_metric([site], plan.fixed_load_w[slot])
            age.add_metric([site], (now - plan.created_at).total_seconds())
        yield from (limit, planned, fixed, age)
        unreadable = CounterMetricFamily("scsp_unreadable_rows", "Stored rows skipped because they could not be "
                                         "read (this run), by table", labels=["table"])
        for table, n in sorted(self.store.faults.unreadable_rows().items()):
            unreadable.add_metric([table], n)
        yield unreadable
        failures = CounterMetricFamily("scsp_site_planning_failures", "Site plans that failed and were contained "
                                       "(this run), by site and stage", labels=["site", "stage"])
        for (site, stage), n in sorted(self.store.faults.site_failures().items()):
            failures.add_metric([site, stage.value], n)
        yield failures


def registry_for(store: Store) -> tuple[CollectorRegistry, Counter]:
    """A registry with the store collector and the HTTP request counter of one app."""
    registry = CollectorRegistry()
    registry.register(StoreCollector(store))
    requests = Counter("scsp_http_requests", "HTTP requests served, by method and status class",
                       ["method", "status"], registry=registry)
    return registry, requests
