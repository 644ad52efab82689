"""Broker admission (接入准入): the MQTT broker admits only registered devices, each publishing
only on its own topics, kept in step by the device registry.

Two adapters behind one interface:

- ``none``: the broker is not told anything (the embedded default, and a broker secured some
  other way). The ingest still refuses data from unknown or retired devices.
- ``mosquitto-dynsec``: Mosquitto's dynamic-security plugin, driven over MQTT through
  ``$CONTROL/dynamic-security/v1`` by an administrator client. A device is a dynsec client
  (username = its uid, client id = its uid, password = its secret) with a role of its own that
  may publish only on its telemetry, event and status topics and subscribe only to its command
  topic (terminals). The ingest worker has its own client and role (the shared subscription).

The registry calls ``admit_device`` when a device is registered or its secret rotated and
``revoke_device`` when it is retired; these run inside the registry's transaction. When the
broker cannot be reached the change is recorded in ``broker_admission_pending`` (the new secret
sealed with the field key, since the registry keeps only its hash) and ``yiyang devices
sync-broker`` applies it later, reconciling the whole registry with the broker.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import orjson
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from yiyang.access import pii
from yiyang.access.crypto import FieldKeyring, decrypt_field, encrypt_field
from yiyang.devices.models import BrokerAdmissionPending, Device, DeviceKind, DeviceState

log = logging.getLogger("yiyang.broker")

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
DEVICE_ROLE_PREFIX = "yiyang-device-"
INGEST_ROLE = "yiyang-ingest"
# Kinds that receive commands from the platform (a terminal's call-back, a message to show).
COMMAND_KINDS = frozenset({DeviceKind.terminal})
SECRET_CONTEXT = pii.DEVICE_SECRET


class BrokerSettings(BaseSettings):
    """Admission settings from the environment (prefix ``YIYANG_BROKER_``)."""

    model_config = SettingsConfigDict(env_prefix="YIYANG_BROKER_", env_file=".env", extra="ignore")

    admission: Literal["none", "mosquitto-dynsec"] = "none"
    host: str = "127.0.0.1"
    port: int = 1883
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    timeout_s: float = 5.0
    retry_after_s: float = 30.0


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached, refused the administrator, or did not answer in time."""


class BrokerRefused(RuntimeError):
    """The broker answered a control command with an error."""


# ---- what a device may do (pure) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acl:
    acltype: str  # publishClientSend, publishClientReceive, subscribeLiteral, subscribePattern, ...
    topic: str
    allow: bool = True


@dataclass(frozen=True, slots=True)
class ClientGrant:
    """A broker client and the role that says what it may do."""

    username: str
    role: str
    acls: tuple[Acl, ...]
    clientid: str | None = None


def device_role(uid: str) -> str:
    return f"{DEVICE_ROLE_PREFIX}{uid}"


def device_grant(uid: str, kind: DeviceKind, topic_root: str = "yiyang") -> ClientGrant:
    """A device may publish on its own telemetry, event and status topics (schema v1) and, if its
    kind takes commands, subscribe to its own command topic. Nothing else: no wildcards."""
    base = f"{topic_root}/v1/{uid}"
    acls = [Acl("publishClientSend", f"{base}/{channel}") for channel in ("telemetry", "event", "status")]
    if kind in COMMAND_KINDS:
        acls.append(Acl("subscribeLiteral", f"{base}/command"))
        acls.append(Acl("publishClientReceive", f"{base}/command"))
    return ClientGrant(uid, device_role(uid), tuple(acls), clientid=uid)


def ingest_grant(username: str, topic_root: str, share_group: str) -> ClientGrant:
    """The ingest workers: subscribe to the shared subscription on every device's topics."""
    acls = []
    for channel in ("telemetry", "event", "status"):
        pattern = f"{topic_root}/v1/+/{channel}"
        acls.append(Acl("subscribePattern", f"$share/{share_group}/{pattern}"))
        acls.append(Acl("subscribePattern", pattern))
        acls.append(Acl("publishClientReceive", pattern))
    return ClientGrant(username, INGEST_ROLE, tuple(acls))


# ---- the adapter interface ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdmittedClient:
    username: str
    roles: frozenset[str]
    disabled: bool


class AdmissionAdapter(Protocol):
    name: str

    def admit(self, grant: ClientGrant, password: str | None) -> bool:
        """Create or update the client and its role; ``password`` None keeps the current one.
        Returns False when the client does not exist and no password was given (nothing done)."""

    def revoke(self, username: str, role: str | None) -> None:
        """Remove the client (its live connection is cut) and its role; absent is fine."""

    def clients(self) -> dict[str, AdmittedClient]:
        """Every client the broker knows, for reconciliation."""

    def roles(self) -> dict[str, tuple[Acl, ...]]:
        """Every role with its ACLs, for reconciliation."""

    def close(self) -> None: ...


class NoAdmission:
    """Today's behaviour: the broker is secured elsewhere (or not at all); nothing to keep in step."""

    name = "none"

    def admit(self, grant: ClientGrant, password: str | None) -> bool:
        return True

    def revoke(self, username: str, role: str | None) -> None:
        return None

    def clients(self) -> dict[str, AdmittedClient]:
        return {}

    def roles(self) -> dict[str, tuple[Acl, ...]]:
        return {}

    def close(self) -> None:
        return None


# ---- Mosquitto dynamic security ---------------------------------------------------------------


class DynsecControl:
    """An administrator's MQTT connection to ``$CONTROL/dynamic-security/v1``: send commands,
    wait for their answers (matched by correlation data)."""

    def __init__(self, host: str, port: int, username: str, password: str, timeout_s: float = 5.0) -> None:
        import paho.mqtt.client as mqtt

        self.timeout_s = timeout_s
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._counter = 0
        # Routes run on a thread pool: one exchange at a time on this connection.
        self._lock = threading.Lock()
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"yiyang-admission-{uuid.uuid4().hex[:12]}",
            protocol=mqtt.MQTTv5,
        )
        self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *_args: self._subscribed.set()
        self._client.on_message = self._on_message
        try:
            self._client.connect(host, port, keepalive=30)
        except OSError as error:
            raise BrokerUnavailable(f"broker unreachable ({type(error).__name__})") from None
        self._client.loop_start()
        if not self._connected.wait(timeout_s) or self._refused:
            self.close()
            raise BrokerUnavailable(f"broker refused the administrator ({self._refused or 'no answer'})")
        if not self._subscribed.wait(timeout_s):
            self.close()
            raise BrokerUnavailable("broker did not confirm the control subscription")

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
        else:
            # Again after every reconnect: paho's session does not outlive the connection.
            client.subscribe(f"{CONTROL_TOPIC}/response", qos=1)
        self._connected.set()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        try:
            body = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            return
        for response in body.get("responses", []):
            self._answers.put(response)

    def execute(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send commands in one message; the answers in the same order (each may hold "error")."""
        if not commands:
            return []
        with self._lock:
            return self._exchange(commands)

    def _exchange(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        tagged = []
        for command in commands:
            self._counter += 1
            tagged.append({**command, "correlationData": str(self._counter)})
        wanted = {item["correlationData"]: index for index, item in enumerate(tagged)}
        answers: list[dict[str, Any] | None] = [None] * len(tagged)
        info = self._client.publish(CONTROL_TOPIC, orjson.dumps({"commands": tagged}), qos=1)
        deadline = threading.Event()
        timer = threading.Timer(self.timeout_s, deadline.set)
        timer.start()
        try:
            while any(answer is None for answer in answers):
                if deadline.is_set():
                    raise BrokerUnavailable("broker did not answer the control commands in time")
                try:
                    answer = self._answers.get(timeout=0.05)
                except queue.Empty:
                    continue
                index = wanted.get(str(answer.get("correlationData")))
                if index is not None:
                    answers[index] = answer
        finally:
            timer.cancel()
        info.wait_for_publish(0)
        return [answer for answer in answers if answer is not None]

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _error(answer: dict[str, Any]) -> str | None:
    error = answer.get("error")
    return str(error) if error else None


def _missing(error: str | None) -> bool:
    return error is not None and "not found" in error.lower()


def _exists(error: str | None) -> bool:
    return error is not None and "already exists" in error.lower()


def _check(answers: Iterable[dict[str, Any]], allow: Callable[[str | None], bool] = lambda _e: False) -> None:
    for answer in answers:
        error = _error(answer)
        if error is not None and not allow(error):
            raise BrokerRefused(f"{answer.get('command')}: {error}")


class MosquittoDynsec:
    """Admission through Mosquitto's dynamic-security plugin (Mosquitto 2.0+)."""

    name = "mosquitto-dynsec"

    def __init__(self, settings: BrokerSettings, control: DynsecControl | None = None) -> None:
        self.settings = settings
        self._control = control
        # After a failed connection, changes are queued at once for a while instead of every
        # registry request waiting out the connect timeout again.
        self._retry_at = 0.0

    @property
    def control(self) -> DynsecControl:
        if self._control is None:
            if not self.settings.admin_username or self.settings.admin_password is None:
                raise BrokerUnavailable(
                    "YIYANG_BROKER_ADMIN_USERNAME and YIYANG_BROKER_ADMIN_PASSWORD are not set"
                )
            if time.monotonic() < self._retry_at:
                raise BrokerUnavailable("broker was unreachable moments ago; queued")
            try:
                self._control = DynsecControl(
                    self.settings.host,
                    self.settings.port,
                    self.settings.admin_username,
                    self.settings.admin_password.get_secret_value(),
                    self.settings.timeout_s,
                )
            except BrokerUnavailable:
                self._retry_at = time.monotonic() + self.settings.retry_after_s
                raise
        return self._control

    def _role_commands(self, grant: ClientGrant, current: tuple[Acl, ...] | None) -> list[dict[str, Any]]:
        wanted = set(grant.acls)
        have = set(current or ())
        commands: list[dict[str, Any]] = []
        for acl in sorted(have - wanted, key=lambda a: (a.acltype, a.topic)):
            commands.append(
                {
                    "command": "removeRoleACL",
                    "rolename": grant.role,
                    "acltype": acl.acltype,
                    "topic": acl.topic,
                }
            )
        for acl in sorted(wanted - have, key=lambda a: (a.acltype, a.topic)):
            commands.append(
                {
                    "command": "addRoleACL",
                    "rolename": grant.role,
                    "acltype": acl.acltype,
                    "topic": acl.topic,
                    "allow": acl.allow,
                }
            )
        return commands

    def admit(self, grant: ClientGrant, password: str | None) -> bool:
        control = self.control
        (role_answer,) = control.execute([{"command": "createRole", "rolename": grant.role}])
        if _exists(_error(role_answer)):
            (got,) = control.execute([{"command": "getRole", "rolename": grant.role}])
            _check([got])
            current = tuple(
                Acl(item["acltype"], item["topic"], bool(item.get("allow", True)))
                for item in got.get("data", {}).get("role", {}).get("acls", [])
            )
        else:
            _check([role_answer])
            current = ()
        _check(control.execute(self._role_commands(grant, current)))

        create: dict[str, Any] = {
            "command": "createClient",
            "username": grant.username,
            "roles": [{"rolename": grant.role}],
        }
        if grant.clientid:
            create["clientid"] = grant.clientid
        if password is None:
            (got,) = control.execute([{"command": "getClient", "username": grant.username}])
            if _missing(_error(got)):
                return False
            _check([got])
        else:
            (answer,) = control.execute([{**create, "password": password}])
            if not _exists(_error(answer)):
                _check([answer])
                return True
            _check(
                control.execute(
                    [{"command": "setClientPassword", "username": grant.username, "password": password}]
                )
            )
        updates: list[dict[str, Any]] = [
            {"command": "addClientRole", "username": grant.username, "rolename": grant.role},
            {"command": "enableClient", "username": grant.username},
        ]
        if grant.clientid:
            updates.append({"command": "setClientId", "username": grant.username, "clientid": grant.clientid})
        _check(control.execute(updates), allow=_exists)
        return True

    def revoke(self, username: str, role: str | None) -> None:
        commands: list[dict[str, Any]] = [
            # Disabling first cuts the live connection; deleting removes the client for good.
            {"command": "disableClient", "username": username},
            {"command": "deleteClient", "username": username},
        ]
        if role:
            commands.append({"command": "deleteRole", "rolename": role})
        _check(self.control.execute(commands), allow=_missing)

    def clients(self) -> dict[str, AdmittedClient]:
        found: dict[str, AdmittedClient] = {}
        offset, page = 0, 1000
        while True:
            (answer,) = self.control.execute(
                [{"command": "listClients", "verbose": True, "count": page, "offset": offset}]
            )
            _check([answer])
            items = answer.get("data", {}).get("clients", [])
            for item in items:
                found[item["username"]] = AdmittedClient(
                    item["username"],
                    frozenset(role["rolename"] for role in item.get("roles", [])),
                    bool(item.get("disabled", False)),
                )
            if len(items) < page:
                return found
            offset += page

    def roles(self) -> dict[str, tuple[Acl, ...]]:
        found: dict[str, tuple[Acl, ...]] = {}
        offset, page = 0, 1000
        while True:
            (answer,) = self.control.execute(
                [{"command": "listRoles", "verbose": True, "count": page, "offset": offset}]
            )
            _check([answer])
            items = answer.get("data", {}).get("roles", [])
            for item in items:
                found[item["rolename"]] = tuple(
                    Acl(acl["acltype"], acl["topic"], bool(acl.get("allow", True)))
                    for acl in item.get("acls", [])
                )
            if len(items) < page:
                return found
            offset += page

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None


# ---- the admission the registry uses ---------------------------------------------------------


@dataclass
class Admission:
    """The adapter, the topic root devices publish under, and the key that seals secrets
    waiting for the broker."""

    adapter: AdmissionAdapter
    topic_root: str = "yiyang"
    keyring: FieldKeyring | None = None

    @property
    def active(self) -> bool:
        return self.adapter.name != "none"

    def seal(self, secret: str | None, uid: str) -> str | None:
        if secret is None or self.keyring is None:
            return None
        return encrypt_field(self.keyring, secret, f"{SECRET_CONTEXT}:{uid}")

    def unseal(self, sealed: str | None, uid: str) -> str | None:
        if sealed is None or self.keyring is None:
            return None
        return decrypt_field(self.keyring, sealed, f"{SECRET_CONTEXT}:{uid}")


_current: Admission | None = None


def admission_from_settings(settings: BrokerSettings | None = None) -> Admission:
    settings = settings or BrokerSettings()
    if settings.admission == "none":
        return Admission(NoAdmission())
    from yiyang.access.keys import get_keys
    from yiyang.devices.ingest import IngestSettings

    return Admission(MosquittoDynsec(settings), IngestSettings().topic_root, get_keys().field_keys)


def current_admission() -> Admission:
    global _current
    if _current is None:
        _current = admission_from_settings()
    return _current


def use_admission(admission: Admission | None) -> Admission | None:
    """Set the process's admission (None: from the settings again); returns the previous one."""
    global _current
    previous, _current = _current, admission
    return previous


def _queue(session: Session, uid: str, sealed: str | None, error: str, now: dt.datetime) -> None:
    pending = session.get(BrokerAdmissionPending, uid)
    if pending is None:
        session.add(
            BrokerAdmissionPending(
                uid=uid, secret=sealed, attempts=1, last_error=error[:200], queued_at=now, last_attempt_at=now
            )
        )
    else:
        if sealed is not None:
            pending.secret = sealed
        pending.attempts += 1
        pending.last_error = error[:200]
        pending.last_attempt_at = now
    session.flush()


def admit_device(
    session: Session,
    device: Device,
    secret: str | None,
    now: dt.datetime,
    admission: Admission | None = None,
) -> bool:
    """Tell the broker about a registered device (or its new secret). Returns False when the
    broker could not be reached: the change is then queued for ``sync-broker``."""
    admission = admission or current_admission()
    if not admission.active:
        return True
    pending = session.get(BrokerAdmissionPending, device.uid)
    if secret is None and pending is not None:
        secret = admission.unseal(pending.secret, device.uid)
    try:
        admission.adapter.admit(device_grant(device.uid, device.kind, admission.topic_root), secret)
    except (BrokerUnavailable, BrokerRefused) as error:
        log.warning("broker admission of a device deferred: %s", error)
        _queue(session, device.uid, admission.seal(secret, device.uid), str(error), now)
        return False
    if pending is not None:
        session.delete(pending)
    return True


def revoke_device(
    session: Session, device: Device, now: dt.datetime, admission: Admission | None = None
) -> bool:
    """Remove a retired device's client from the broker and cut its connection; queued if the
    broker cannot be reached (and any undelivered secret is dropped)."""
    admission = admission or current_admission()
    if not admission.active:
        return True
    try:
        admission.adapter.revoke(device.uid, device_role(device.uid))
    except (BrokerUnavailable, BrokerRefused) as error:
        log.warning("broker revocation of a device deferred: %s", error)
        _queue(session, device.uid, None, str(error), now)
        pending = session.get(BrokerAdmissionPending, device.uid)
        if pending is not None:
            pending.secret = None
        return False
    session.execute(delete(BrokerAdmissionPending).where(BrokerAdmissionPending.uid == device.uid))
    return True


# ---- reconciliation: the whole registry against the broker --------------------------------------


@dataclass
class SyncReport:
    devices: int = 0
    admitted: int = 0  # created, or brought back in line (role, enabled, password)
    unchanged: int = 0
    revoked: int = 0  # retired devices removed, and device clients the registry does not know
    secret_unknown: list[str] = field(default_factory=list)  # active, not on the broker, no secret
    failed: dict[str, str] = field(default_factory=dict)
    ingest: str = "skipped"

    def as_dict(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "admitted": self.admitted,
            "unchanged": self.unchanged,
            "revoked": self.revoked,
            "secret_unknown": len(self.secret_unknown),
            "failed": len(self.failed),
            "ingest": self.ingest,
        }


def _device_rows(session: Session, chunk: int = 1000) -> Iterator[list[tuple[str, DeviceKind, DeviceState]]]:
    last_id = 0
    while True:
        rows = session.execute(
            select(Device.id, Device.uid, Device.kind, Device.state)
            .where(Device.id > last_id)
            .order_by(Device.id)
            .limit(chunk)
        ).all()
        if not rows:
            return
        last_id = rows[-1].id
        yield [(row.uid, DeviceKind(row.kind), DeviceState(row.state)) for row in rows]


def retry_pending(
    session: Session, now: dt.datetime, admission: Admission | None = None, limit: int = 1000
) -> tuple[int, int]:
    """Apply the queued changes only (a cheap timed job); returns (applied, still pending)."""
    admission = admission or current_admission()
    if not admission.active:
        return 0, 0
    applied = 0
    rows = session.scalars(
        select(BrokerAdmissionPending).order_by(BrokerAdmissionPending.queued_at).limit(limit)
    ).all()
    for row in rows:
        device = session.scalar(select(Device).where(Device.uid == row.uid))
        if device is None or device.state != DeviceState.active:
            done = (
                revoke_device(session, device, now, admission)
                if device is not None
                else _revoke_uid(admission, row)
            )
        else:
            done = admit_device(session, device, None, now, admission)
        if not done:
            break  # the broker is still away: leave the rest for next time
        applied += 1
    session.flush()
    remaining = session.scalar(select(func.count()).select_from(BrokerAdmissionPending)) or 0
    return applied, remaining


def _revoke_uid(admission: Admission, row: BrokerAdmissionPending) -> bool:
    try:
        admission.adapter.revoke(row.uid, device_role(row.uid))
    except (BrokerUnavailable, BrokerRefused):
        return False
    object_session = Session.object_session(row)
    if object_session is not None:
        object_session.delete(row)
    return True


def sync_broker(
    session: Session,
    now: dt.datetime,
    admission: Admission | None = None,
    *,
    ingest: tuple[str, str | None, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:
    """Bring the broker in line with the registry: every active device admitted with its role,
    every retired or unknown device client removed, the queued secrets delivered, and (given
    ``ingest`` = (username, password, share group)) the ingest workers' client and role.

    ``progress(done, total)`` is called as devices are checked. The caller commits: delivered
    pending rows are deleted, failures recorded again."""
    admission = admission or current_admission()
    report = SyncReport()
    if not admission.active:
        return report
    adapter = admission.adapter
    clients = adapter.clients()
    roles = adapter.roles()

    if ingest is not None:
        username, password, share_group = ingest
        grant = ingest_grant(username, admission.topic_root, share_group)
        if username in clients and not password and set(roles.get(grant.role, ())) == set(grant.acls):
            report.ingest = "unchanged"
        else:
            report.ingest = "admitted" if adapter.admit(grant, password or None) else "password_needed"

    pending = {row.uid: row for row in session.scalars(select(BrokerAdmissionPending))}
    total = session.scalar(select(func.count()).select_from(Device)) or 0
    registered: set[str] = set()
    done = 0
    for rows in _device_rows(session):
        for uid, kind, state in rows:
            registered.add(uid)
            report.devices += 1
            row = pending.get(uid)
            try:
                if state != DeviceState.active:
                    if uid in clients or device_role(uid) in roles:
                        adapter.revoke(uid, device_role(uid))
                        report.revoked += 1
                    else:
                        report.unchanged += 1
                else:
                    secret = admission.unseal(row.secret, uid) if row is not None else None
                    grant = device_grant(uid, kind, admission.topic_root)
                    client = clients.get(uid)
                    in_line = (
                        client is not None
                        and not client.disabled
                        and grant.role in client.roles
                        and set(roles.get(grant.role, ())) == set(grant.acls)
                    )
                    if in_line and secret is None:
                        report.unchanged += 1
                    elif adapter.admit(grant, secret):
                        report.admitted += 1
                    else:
                        report.secret_unknown.append(uid)
                if row is not None:
                    session.delete(row)
            except (BrokerUnavailable, BrokerRefused) as error:
                report.failed[uid] = str(error)
                if row is not None:
                    row.attempts += 1
                    row.last_error = str(error)[:200]
                    row.last_attempt_at = now
                if isinstance(error, BrokerUnavailable):
                    raise
            done += 1
            if progress is not None:
                progress(done, total)

    for username, client in clients.items():
        device_roles = {role for role in client.roles if role.startswith(DEVICE_ROLE_PREFIX)}
        if device_roles and username not in registered:
            adapter.revoke(username, device_role(username))
            report.revoked += 1
    for role in roles:
        uid = role.removeprefix(DEVICE_ROLE_PREFIX)
        if role.startswith(DEVICE_ROLE_PREFIX) and uid not in registered and uid not in clients:
            adapter.revoke(uid, role)  # a role left behind by a transaction that rolled back
    for uid, row in pending.items():
        if uid not in registered:
            session.delete(row)
    session.flush()
    return report
