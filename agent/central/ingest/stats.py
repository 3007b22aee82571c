"""`edge-agent ingest stats`: events per device and type, marks and gaps, rejects by reason."""

from __future__ import annotations

from typing import Any

from agent.central.store.base import Store
from agent.central.verify import ranges_text

HOUR_MS = 3_600_000
UNCERTAIN_BELOW_PCT = 75  # Berlin's traffic detectors drop hours under 75 % good intervals


def hourly_coverage(rows: list[tuple[str, int, int, int]], uncertain_below: int = UNCERTAIN_BELOW_PCT,
                    ) -> dict[str, list[dict[str, Any]]]:
    """Per device, per UTC hour: the share of the counted time the camera was looking.

    Each count event covers (end - interval_s, end]; its seconds are spread over the hours that
    span overlaps, in proportion. Several rules report the same split, so the share is a ratio of
    sums. An hour under `uncertain_below` percent is marked uncertain."""
    sums: dict[str, dict[int, list[float]]] = {}
    for device, end_ms, interval_s, observed_s in rows:
        start_ms = end_ms - interval_s * 1000
        share = observed_s / interval_s if interval_s else 0.0
        hour = start_ms - start_ms % HOUR_MS
        while hour < end_ms:
            overlap = (min(end_ms, hour + HOUR_MS) - max(start_ms, hour)) / 1000
            acc = sums.setdefault(device, {}).setdefault(hour, [0.0, 0.0])
            acc[0] += overlap * share
            acc[1] += overlap
            hour += HOUR_MS
    out: dict[str, list[dict[str, Any]]] = {}
    for device, hours in sums.items():
        out[device] = []
        for hour, (seen, total) in sorted(hours.items()):
            pct = int(100 * seen / total) if total else 0
            out[device].append({"hour_ms": hour, "coverage_pct": pct, "uncertain": pct < uncertain_below})
    return out


def report(store: Store, uncertain_below: int = UNCERTAIN_BELOW_PCT) -> dict[str, Any]:
    devices: dict[str, Any] = {}
    for m in store.marks():
        gaps = store.gaps(m.device)
        dropped = store.dropped(m.device)
        devices[m.device] = {
            "dropped_by_device": [[a, b] for a, b in dropped],
            "site": m.site, "contiguous": m.contiguous, "max_seq": m.max_seq, "replayed": m.replayed,
            "seq_conflicts": m.conflicts, "conflict_seq": m.conflict_seq, "acked_up_to": m.ack_seq,
            "gaps": [[a, b] for a, b in gaps], "missing": sum(b - a + 1 for a, b in gaps), "events": {},
        }
    for device, etype, n in store.event_counts():
        devices.setdefault(device, {"events": {}})["events"][etype] = n
    for device, hours in hourly_coverage(store.coverage(), uncertain_below).items():
        devices.setdefault(device, {"events": {}})["coverage_by_hour"] = hours
    for device, n in store.replay_counts().items():
        devices.setdefault(device, {"events": {}})["from_replay"] = n
    rejects = store.reject_counts()
    return {
        "uncertain_below_pct": uncertain_below,
        "schema_version": store.schema_version(),
        "events": sum(sum(d["events"].values()) for d in devices.values()),
        "from_replay": sum(d.get("from_replay", 0) for d in devices.values()),
        "devices": devices,
        "rejects": rejects,
        "manifests": store.manifest_count(),
        "rejected": sum(rejects.values()),
    }


def lines(rep: dict[str, Any]) -> list[str]:
    out = [f"events stored: {rep['events']} from {len(rep['devices'])} devices"]
    if rep.get("from_replay"):
        live = rep["events"] - rep["from_replay"]
        out[0] += f" ({live} live, {rep['from_replay']} from recorded footage, marked source replay)"
    for device, d in sorted(rep["devices"].items()):
        types = ", ".join(f"{t} {n}" for t, n in sorted(d["events"].items())) or "none"
        gaps = ranges_text(d.get("gaps", [])) or "none"
        dropped = ranges_text(d.get("dropped_by_device", []))
        if dropped:
            gaps += f" (dropped by the device: {dropped})"
        out.append(f"  {device}: contiguous {d.get('contiguous', 0)}, highest {d.get('max_seq', 0)}, "
                   f"replayed {d.get('replayed', 0)}; {types}; gaps: {gaps}")
        if d.get("from_replay"):
            out.append(f"    RECORDED FOOTAGE: {d['from_replay']} of these event(s) were made by `edge-agent replay` "
                       f"from recorded footage (source 'replay'), not live")
        if d.get("conflict_seq"):
            out.append(f"    SEQ CONFLICT: {d['seq_conflicts']} event(s) reuse stored seqs from {d['conflict_seq']}; "
                       f"acks held at {d['acked_up_to']} (see README: Central ingest)")
        hours = d.get("coverage_by_hour", [])
        if hours:
            shown = ", ".join(
                f"{_hour(h['hour_ms'])} {h['coverage_pct']}%{' UNCERTAIN' if h['uncertain'] else ''}" for h in hours)
            out.append(f"    coverage by hour (UTC; uncertain below {rep.get('uncertain_below_pct', 75)}%): {shown}")
    out.append(f"privacy manifests stored: {rep.get('manifests', 0)}")
    out.append(f"rejects: {rep['rejected']}")
    for reason, n in sorted(rep["rejects"].items()):
        out.append(f"  {reason}: {n}")
    return out


def _hour(ms: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H")
