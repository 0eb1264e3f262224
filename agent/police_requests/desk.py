"""The daemon's request desk: tokens in, status and audit out, footage only for valid ones.

Tokens (requests, and police withdrawals of them) arrive on the MQTT thread and are
queued; one thread (`requests`) works through them and through the open requests:
waiting for a synchronised clock, for the owner's decision (or its timeout), exporting
and uploading. Every state is stored, published on the request's status topic and
written to the audit log, in that order."""

from __future__ import annotations

import logging
import queue
import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.audit import AuditError, AuditTrail
from agent.clock import ClockState
from agent.evidence.export import ExportError, Package, load_package, package_folder
from agent.evidence.upload import UploadError, UploadStopped
from agent.mqtt import payloads
from agent.police_requests.desk_terms import (
    Consent,
    NotAwaitingOwner,
    PoliceStopped,
    RequestWatcher,
    StatusSink,
    Uploading,
)
from agent.police_requests.early_copy import EarlyCopies, FetchFootage
from agent.police_requests.holds import hold_until, place_holds, release_holds
from agent.police_requests.inbox import RequestInbox
from agent.police_requests.packing import pack_window, package_bytes
from agent.police_requests.recheck import check_again, check_key_still_valid
from agent.police_requests.rejections import RejectionGate
from agent.police_requests.store import RequestStore, StoredRequest, UnknownRequest
from agent.police_requests.token import Policy, Rejected, status_id, verify
from agent.police_requests.withdrawal import Withdrawal, verify_withdrawal
from agent.recording.index import SegmentIndex
from agent.recording.recorder_fetch import FetchError
from contract.request_states import RequestState
from contract.timestamps import rfc3339
from contract.token_rules import PRESERVE

log = logging.getLogger(__name__)

# How often open requests are looked at (clock, owner timeouts) without a new event.
TICK_S = 5.0
# How often request ids past their token's expiry are forgotten.
FORGET_EVERY = timedelta(hours=1)
# The `failed` reason of a request while the device key is missing or unusable: a package
# the registry cannot verify would be worse than none. Its hold stays, so the footage is
# still there once the owner has restored the key or enrolled a new one.
NO_DEVICE_KEY = "device_key_unusable"
# A request in these states is exported and sent on the desk's thread (again after a
# restart: the export is kept, the upload resumed).
_DELIVERING = frozenset({RequestState.APPROVED, RequestState.EXPORTING, RequestState.UPLOADING})


class RequestDesk:
    def __init__(
        self,
        *,
        agent_id: str,
        policy: Policy,
        consent: Consent,
        store: RequestStore,
        index: SegmentIndex,
        audit: AuditTrail,
        publish_status: StatusSink,
        clock: Callable[[], ClockState],
        device_key: Ed25519PrivateKey | None,
        evidence_dir: Path,
        key_problem: str | None = None,
        uploader: Uploading | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_state: RequestWatcher | None = None,
        rejections: RejectionGate | None = None,
        fetch: FetchFootage | None = None,
        oldest: Callable[[], datetime | None] | None = None,
    ) -> None:
        self._agent = agent_id
        # Footage on the owner's ONVIF recorder: fetched before an export, early if waiting.
        self._fetch, self._early = fetch, EarlyCopies(fetch)
        self._oldest = oldest or index.oldest_start
        self._on_state = on_state
        self._policy = policy
        self._consent = consent
        self._store = store
        self._index = index
        self._audit = audit
        # A flood of junk tokens must not fill the disk: see requests/rejections.py.
        self._rejections = rejections if rejections is not None else RejectionGate(audit)
        self._publish = publish_status
        self._clock = clock
        self._key = device_key
        self._key_problem = key_problem
        self._evidence_dir = evidence_dir
        self._uploader = uploader
        self._now = now
        self._inbox = RequestInbox(self._rejections, now)
        # The request being sent, and a withdrawal of it that stops it at its next chunk.
        self._sending: str | None = None
        self._withdrawn_while_sending: Withdrawal | None = None
        self._deferred: list[bytes] = []  # withdrawals of requests not seen yet
        self._decisions: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._next_forget = datetime.min.replace(tzinfo=UTC)

    # --- called from other threads -----------------------------------------------------------

    def token_arrived(self, payload: bytes) -> None:
        """A message on the requests topic (MQTT thread): queue it, nothing else; past
        the queue's bound, count it unchecked into the rejections' summary."""
        if self._inbox.put(payload):
            self._wake.set()

    def decide(self, request_id: str, approve: bool) -> StoredRequest:
        """The owner's decision (control socket, owner page). Raises RequestStoreError when
        there is no such request, NotAwaitingOwner when it is not waiting for one."""
        request = self._store.get(request_id)
        if request.state != RequestState.AWAITING_OWNER:
            raise NotAwaitingOwner(request_id, request.state)
        self._decisions.put((request_id, approve))
        self._wake.set()
        return request

    def wake(self) -> None:
        """Look now rather than at the next tick: after the stop event is set, the thread
        ends at once instead of up to TICK_S later."""
        self._wake.set()

    def close(self) -> None:
        """The agent stops: write down the rejections counted and not yet summarised."""
        try:
            self._rejections.flush()
        except AuditError as exc:
            log.error("the counted rejected tokens could not be written down: %s", exc)

    # --- the desk's own thread ---------------------------------------------------------------

    def start(self, stop: threading.Event) -> None:
        """Work on the `requests` thread until `stop` is set (then close() flushes)."""
        threading.Thread(target=self.run, args=(stop,), name="requests", daemon=True).start()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(TICK_S)
            self._wake.clear()
            try:
                self._drain(stop)
            except Exception:
                log.exception("request desk: unexpected error; carrying on")
                stop.wait(TICK_S)
        self.close()  # tokens counted after the daemon's own close() are not lost either

    def _drain(self, stop: threading.Event) -> None:
        if self._policy.key_sets is not None:  # a key set sent before a token counts for it
            self._policy.key_sets.apply_arrived()
        while not stop.is_set() and (payload := self._inbox.next_token()) is not None:
            self._receive(payload)
        self._take_withdrawals()  # after the tokens: a request and its withdrawal sent at once
        while not stop.is_set():
            try:
                request_id, approve = self._decisions.get_nowait()
            except queue.Empty:
                break
            self._owner_decided(request_id, approve)
        for request in self._store.open_requests():
            if stop.is_set():
                return
            self._advance(request, stop)
        now = self._now()
        self._rejections.tick(now)
        # A write (and fsync) only now and then, and never by an untrusted clock: one
        # running ahead would forget ids that still guard against replays.
        if now >= self._next_forget and self._clock_trusted():
            self._store.forget_expired(now)
            self._next_forget = now + FORGET_EVERY

    def _receive(self, payload: bytes) -> None:
        now = self._now()
        try:
            request = verify(
                payload,
                self._policy,
                now=now,
                seen=self._store.seen,
                oldest_footage=self._oldest(),
            )
        except Rejected as exc:
            self._refuse(payload, exc, now)
            return
        stored = self._store.accept(request, now)
        log.info("request %s: %s", request.id, request.summary())
        self._audit.append("received", request.id, request.audit_detail())
        self._hold(stored)
        self._status(stored.id, RequestState.RECEIVED, None, stored)
        self._advance(stored, None)

    def _refuse(self, payload: bytes, exc: Rejected, now: datetime) -> None:
        """A token (or withdrawal) failed a check: its status under its own hash."""
        where = status_id(payload)
        if not self._rejections.rejected(where, exc.reason, len(payload), now):
            return  # counted into the next summary: no status, no entry of its own
        log.warning("request %s rejected: %s", where, exc)
        self._status(where, RequestState.REJECTED, exc.reason)
        self._audit.append(
            "rejected",
            where,
            {"reason": exc.reason, "detail": exc.detail, "bytes": len(payload)},
        )

    def _take_withdrawals(self, *, sending: bool = False) -> None:
        """Check each withdrawal that arrived; withdraw what it names (see withdrawal.py).
        While `sending`, one naming an unknown request waits for the next pass: its request
        may still wait in the inbox behind the upload."""
        deferred, self._deferred = self._deferred, []
        for payload in chain(deferred, iter(self._inbox.next_withdrawal, None)):
            now = self._now()
            try:
                withdrawal = verify_withdrawal(payload, self._policy, now=now)
                request = self._store.get(withdrawal.request_id)
            except UnknownRequest as exc:
                if sending:
                    self._deferred.append(payload)
                    continue
                detail = f"no request {exc.request_id!r} here"
                self._refuse(payload, Rejected("unknown_request", detail), now)
                continue
            except Rejected as exc:
                self._refuse(payload, exc, now)
                continue
            if request.final:
                detail = f"request {request.id!r} is {request.state} already"
                self._refuse(payload, Rejected("request_finished", detail), now)
            elif request.id == self._sending:
                self._withdrawn_while_sending = withdrawal
            else:
                self._withdraw(request, withdrawal)

    def _withdraw(self, request: StoredRequest, withdrawal: Withdrawal) -> None:
        """Stop a request for good: nothing more is exported or sent, its hold is released
        and what was exported of it is deleted."""
        log.warning("request %s withdrawn by the police: %s", request.id, withdrawal.summary())
        self._set(request, RequestState.WITHDRAWN, None)
        self._audit.append("withdrawn", request.id, withdrawal.audit_detail(request.state))
        self._release_hold(request)
        shutil.rmtree(package_folder(self._evidence_dir, request.id), ignore_errors=True)

    def _hold(self, request: StoredRequest) -> None:
        """Put the window on hold the moment the request is accepted: pruning must not
        destroy what police asked for while the owner thinks about it."""
        until = hold_until(request, self._now())
        place_holds(self._index, request, until)
        self._audit.append("held", request.id, {"until": rfc3339(until)})

    def _advance(self, request: StoredRequest, stop: threading.Event | None) -> None:
        state = request.state
        if state not in (RequestState.RECEIVED, RequestState.WAITING_CLOCK):
            try:  # received ones are checked in full below, revocation included
                check_key_still_valid(self._store.token_of(request.id), self._policy)
            except Rejected as exc:
                self._reject(request, exc, "after its key was revoked")
                return
        if state in (RequestState.RECEIVED, RequestState.WAITING_CLOCK):
            if not self._clock_trusted():
                if state != RequestState.WAITING_CLOCK:
                    self._set(request, RequestState.WAITING_CLOCK, None)
                    self._audit.append("waiting_clock", request.id, {})
                return
            if self._rejected_again(request):
                return
            if request.kind == PRESERVE:  # nothing to export or send: no consent, no key
                self._set(request, RequestState.PRESERVED, None)
                self._audit.append("preserved", request.id, {"until": rfc3339(request.expires)})
                return
            if self._key_problem is not None:
                self._no_key(request)
                return
            self._ask_consent(request)
        elif state == RequestState.AWAITING_OWNER:
            deadline = request.owner_deadline
            if deadline is not None and self._now() >= deadline:
                self._decline(request, "owner_timeout")
            elif stop is not None:
                self._early.keep(request, stop)
        elif state == RequestState.PRESERVED:
            if self._now() >= request.expires:
                log.info("preservation %s lapsed: its footage is no longer held", request.id)
                self._set(request, RequestState.LAPSED, None)
                self._audit.append("lapsed", request.id, {})
                self._release_hold(request)
            elif stop is not None:  # a recorder may overwrite what is preserved: copy it
                self._early.keep(request, stop)
        elif state in _DELIVERING and stop is not None:
            self._deliver(request, stop)

    def _clock_trusted(self) -> bool:
        return not self._consent.require_clock or self._clock().synced

    def _rejected_again(self, request: StoredRequest) -> bool:
        """Check the token again on the clock now trusted (see recheck); True when it fails
        there: the request is rejected under its id and its hold released."""
        try:
            check_again(
                request,
                self._store.token_of(request.id),
                self._policy,
                now=self._now(),
                oldest_footage=self._oldest(),
            )
        except Rejected as exc:
            self._reject(request, exc, "on the synchronised clock")
            return True
        return False

    def _reject(self, request: StoredRequest, exc: Rejected, when: str) -> None:
        """An accepted request fails a check again: rejected under its id, hold released."""
        log.warning("request %s rejected %s: %s", request.id, when, exc)
        self._set(request, RequestState.REJECTED, exc.reason)
        self._audit.append("rejected", request.id, {"reason": exc.reason, "detail": exc.detail})
        self._release_hold(request)

    def _ask_consent(self, request: StoredRequest) -> None:
        policy = self._consent.policy_for(request.kind)
        if policy == "auto":
            self._approve(request, "policy")
        elif policy == "never":
            self._decline(request, "owner_declined")
        else:
            deadline = self._now() + self._consent.owner_timeout
            request = self._store.update(
                request.id,
                self._now(),
                state=RequestState.AWAITING_OWNER,
                owner_deadline=deadline,
            )
            self._status(request.id, RequestState.AWAITING_OWNER, None, request)
            self._audit.append("awaiting_owner", request.id, {"deadline": rfc3339(deadline)})
            log.warning(
                "request %s waits for your decision until %s: camera-agent requests show %s",
                request.id,
                rfc3339(deadline),
                request.id,
            )

    def _owner_decided(self, request_id: str, approve: bool) -> None:
        request = self._store.get(request_id)
        if request.state != RequestState.AWAITING_OWNER:
            return
        if approve:
            self._approve(request, "owner")
        else:
            self._decline(request, "owner_declined")

    def _approve(self, request: StoredRequest, by: str) -> None:
        self._set(request, RequestState.APPROVED, None)
        self._audit.append("approved", request.id, {"by": by})
        self._wake.set()  # export on the desk's next pass, not inside the MQTT callback path

    def _decline(self, request: StoredRequest, reason: str) -> None:
        self._set(request, RequestState.DECLINED, reason)
        self._audit.append("declined", request.id, {"reason": reason})
        self._release_hold(request)

    def _release_hold(self, request: StoredRequest) -> None:
        release_holds(self._index, request, self._now())

    def _no_key(self, request: StoredRequest) -> None:
        detail = f"the device key is {self._key_problem}: the agent needs re-enrolment"
        log.error("request %s failed: %s", request.id, detail)
        self._set(request, RequestState.FAILED, NO_DEVICE_KEY)
        self._audit.append("failed", request.id, {"reason": NO_DEVICE_KEY, "detail": detail})

    def _deliver(self, request: StoredRequest, stop: threading.Event) -> None:
        self._sending, self._withdrawn_while_sending = request.id, None
        try:
            self._export_and_send(request, stop)
        finally:
            self._sending = None

    def _export_and_send(self, request: StoredRequest, stop: threading.Event) -> None:
        if self._key_problem is not None and request.state == RequestState.APPROVED:
            self._no_key(request)
            return
        directory = package_folder(self._evidence_dir, request.id)
        package: Package
        if request.state == RequestState.APPROVED or not (directory / "manifest.json").exists():
            request = self._set(request, RequestState.EXPORTING, None)
            try:
                package = pack_window(
                    request,
                    directory,
                    agent_id=self._agent,
                    index=self._index,
                    key=self._key,
                    fetch=self._fetch,
                    stop=stop,
                )
            except (FetchError, ExportError) as exc:
                if stop.is_set():
                    return  # the agent is stopping (a fetch cut off): the next start goes on
                self._set(request, RequestState.FAILED, exc.reason)
                self._audit.append("failed", request.id, {"reason": exc.reason, "detail": str(exc)})
                return
            total = package_bytes(package)  # the signed manifest is sent too
            request = self._store.update(
                request.id,
                self._now(),
                bytes_total=total,
                manifest_sha256=package.manifest_sha256,
            )
            self._status(request.id, RequestState.EXPORTING, None, request)
            self._audit.append(
                "exported",
                request.id,
                {
                    "files": len(package.files),
                    "bytes": total,
                    "manifest_sha256": package.manifest_sha256,
                },
            )
        else:
            package = load_package(directory)
        if self._uploader is None:
            log.warning("request %s: exported to %s; no uploader configured", request.id, directory)
            return
        request = self._set(request, RequestState.UPLOADING, None)
        token = self._store.token_of(request.id)

        def progress(sent: int, total: int) -> None:
            # Between chunks (at most CHUNK_SECONDS apart): a key set that arrived since
            # may revoke the key that signed this request, a withdrawal may stop it.
            if self._policy.key_sets is not None:
                self._policy.key_sets.apply_arrived()
            try:
                check_key_still_valid(token, self._policy)
            except Rejected as exc:
                raise PoliceStopped(exc) from None
            self._take_withdrawals(sending=True)
            if self._withdrawn_while_sending is not None:
                raise PoliceStopped(self._withdrawn_while_sending)
            current = self._store.update(request.id, self._now(), bytes_sent=sent)
            self._status(current.id, RequestState.UPLOADING, None, current)

        try:
            self._uploader.send(request, package, progress, stop)
        except UploadStopped:
            return  # the agent is stopping; the next start resumes from the server's offset
        except PoliceStopped as exc:
            if isinstance(exc.why, Withdrawal):
                self._withdraw(self._store.get(request.id), exc.why)
            else:
                self._reject(self._store.get(request.id), exc.why, "while it was sent")
            return
        except (UploadError, OSError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log.error("request %s: upload failed: %s", request.id, exc)
            self._set(request, RequestState.FAILED, "upload_failed")
            self._audit.append(
                "failed", request.id, {"reason": "upload_failed", "detail": f"{reason}: {exc}"}
            )
            return
        if stop.is_set():
            return
        self._set(request, RequestState.COMPLETED, None)
        self._audit.append("completed", request.id, {"manifest_sha256": request.manifest_sha256})

    def _set(
        self, request: StoredRequest, state: RequestState, reason: str | None
    ) -> StoredRequest:
        updated = self._store.update(request.id, self._now(), state=state, reason=reason)
        self._status(updated.id, state, reason, updated)
        return updated

    def _status(
        self,
        request_id: str,
        state: RequestState,
        reason: str | None,
        request: StoredRequest | None = None,
    ) -> None:
        body = payloads.request_status(
            request_id,
            state,
            reason,
            self._now(),
            bytes_sent=request.bytes_sent if request else 0,
            bytes_total=request.bytes_total if request else 0,
            manifest_sha256=request.manifest_sha256 if request else None,
        )
        self._publish(request_id, body, request is not None)
        if request is not None and self._on_state is not None:
            self._on_state(request)
