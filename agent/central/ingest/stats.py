"""`edge-agent ingest stats`: events per device and type, marks and gaps, rejects by reason."""

from __future__ import annotations

from typing import Any

from agent.central.store.base import Store
from agent.central.verify import ranges_text


def report(store: Store) -> dict[str, Any]:
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
    for device, n in store.replay_counts().items():
        devices.setdefault(device, {"events": {}})["from_replay"] = n
    rejects = store.reject_counts()
    return {
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
        out[0] += f" ({rep['events'] - rep['from_replay']} live, {rep['from_replay']} from recorded footage, marked source replay)"
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
    out.append(f"privacy manifests stored: {rep.get('manifests', 0)}")
    out.append(f"rejects: {rep['rejected']}")
    for reason, n in sorted(rep["rejects"].items()):
        out.append(f"  {reason}: {n}")
    return out
