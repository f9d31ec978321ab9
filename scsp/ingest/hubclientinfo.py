"""HubClientInfo (mod_hub_client_info.asciidoc): which parties behind a Hub are reachable.

A party reported OFFLINE (or PLANNED, SUSPENDED) gets no traffic; when it is CONNECTED again we
resync with it (GET) and send the current plan, never what we would have sent meanwhile.
"""

from __future__ import annotations

from datetime import datetime

from ocpi221.hubclientinfo import ClientInfo, ConnectionStatus
from scsp import errors
from scsp.events import SiteChanged
from scsp.platform.transport import Caller
from scsp.records.sessions import PLANNED_STATUSES
from scsp.store import Store


def require_hub(caller: Caller) -> None:
    """Refuse ClientInfo from a party that is not a Hub.

    mod_hub_client_info: "Data owner: Hub"; a party that is not the owner is treated like a push
    of a Client Owned Object for another party (transport_and_format: HTTP 404). Otherwise any
    connected CPO could switch off our traffic to another party by reporting it OFFLINE.
    """
    if caller.party.role != "HUB":
        raise errors.NotFound("ClientInfo comes from a Hub; you are connected as " + caller.party.role)


def get_client_info(store: Store, caller: Caller, cc: str, pid: str) -> ClientInfo:
    """The ClientInfo the calling Hub reported for (cc, pid)."""
    require_hub(caller)
    found = store.sync.client_info(caller.party.id, cc, pid)
    if not found:
        raise errors.NotFound(f"no client info for {cc}/{pid}")
    return found[0]


def record_client_info(store: Store, caller: Caller, cc: str, pid: str, info: ClientInfo, *, now: datetime,
                       changed: SiteChanged) -> bool:
    """Store a Hub's ClientInfo (mod_hub_client_info); True when it is new.

    A party that is not CONNECTED gets no traffic (the planner treats its sessions as fixed load);
    when it is CONNECTED again we resync with it by GET and plan its sites afresh
    (transport_and_format "Offline behaviour": nothing is replayed).
    """
    require_hub(caller)
    if (info.country_code.upper(), info.party_id.upper()) != (cc.upper(), pid.upper()):
        raise errors.InvalidParameters("country_code/party_id: the body differs from the URL")
    previous, applied = store.sync.put_client_info(caller.party.id, info)
    if not applied or previous == info.status:
        return previous is None
    direct = store.parties.registered(cc, pid)
    if direct is not None and direct.id != caller.party.id:
        store.parties.set_connection_status(direct.id, info.status, now=now)
    if info.status == ConnectionStatus.CONNECTED and previous is not None:
        for party in {caller.party.id} | ({direct.id} if direct is not None else set()):
            store.sync.resync_due(party)
    for stored in store.sessions.find(statuses=PLANNED_STATUSES)[0]:
        if (stored.key.country_code, stored.key.party_id) == (cc.upper(), pid.upper()):
            changed(stored.site)
    return previous is None

