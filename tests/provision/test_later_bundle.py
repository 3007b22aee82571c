"""A later bundle on a stick moves a provisioned device to a new broker and Wi-Fi, with the same key;
an older bundle is ignored and another site's is refused."""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest
from tests.provision.provsite import SITE, Site

pytestmark = pytest.mark.slow


def test_a_later_bundle_changes_broker_and_wifi_without_a_new_key(tmp_path: Path) -> None:
    site = Site(tmp_path)
    first = site.operator_setup("mqtts://broker-1.example:8883")
    dev = site.device("dev", "10000000d00d0001")
    trust = site.op / "provisioning.pub.json"
    site.cli("provision", "write", first, "--trust", trust, "--to", dev.stick)
    site.cli("firstboot", *dev.args(), "--no-publish")
    key, record = (dev.etc / "device.key").read_bytes(), (dev.etc / "device.pub.json").read_bytes()
    tls_key = (dev.etc / "mqtt.key").read_bytes()

    def bundle(name: str, when: int, broker: str, ssid: str, site_id: str = SITE) -> Path:
        out = site.op / name
        site.cli("provision", "bundle", "--key", site.op / "provisioning.key", "--site", site_id,
                 "--broker", broker, "--ca", site.pki["ca.crt"],
                 "--ingest-keys", site.central / "ingest-key" / "device.pub.json", "--wifi-ssid", ssid,
                 "--wifi-psk-file", site.op / "enrol.password", "--issued", str(when), "--out", out)
        return out

    now = int(time.time())  # the first bundle was issued now; the next ones are dated around it
    later = bundle("later.dsse", now + 3600, "mqtts://broker-2.example:8884", "Depot-2")
    site.cli("provision", "write", later, "--trust", trust, "--to", dev.stick)
    out = site.cli("stick", *dev.args()).stdout
    assert "applied (same key" in out and "agent.toml" in out and "edge-agent-wifi.nmconnection" in out
    cfg = tomllib.loads((dev.etc / "agent.toml").read_text())
    assert (cfg["mqtt"]["host"], cfg["mqtt"]["port"]) == ("broker-2.example", 8884)
    assert cfg["device"]["id"] == dev.id
    assert "ssid=Depot-2" in (dev.nm / "edge-agent-wifi.nmconnection").read_text()
    assert (dev.etc / "device.key").read_bytes() == key and (dev.etc / "device.pub.json").read_bytes() == record
    assert (dev.etc / "mqtt.key").read_bytes() == tls_key
    # an older bundle (a replayed one, say) is ignored
    older = bundle("older.dsse", now - 3600, "mqtts://broker-0.example:8883", "Old")
    site.cli("provision", "write", older, "--trust", trust, "--to", dev.stick)
    before = (dev.etc / "agent.toml").read_bytes()
    assert "is not newer" in site.cli("stick", *dev.args()).stdout
    assert (dev.etc / "agent.toml").read_bytes() == before
    # another site's bundle is refused with one line
    other = bundle("other.dsse", now + 7200, "mqtts://broker-2.example:8884", "Depot-2", "depot-9")
    site.cli("provision", "write", other, "--trust", trust, "--to", dev.stick)
    assert "needs a new first boot" in site.refused("stick", *dev.args())
    assert (dev.etc / "agent.toml").read_bytes() == before
