"""An etcd lease kept alive by a daemon thread, and replaced when lost."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Self

from cbcontrol.exceptions import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from cbcontrol.store._etcd._client import EtcdClient

__all__ = ["LeaseKeeper"]

logger = logging.getLogger("cbcontrol.etcd")


class LeaseKeeper:
    """
    Keeps one etcd lease alive from a daemon thread, and replaces it when lost.

    etcd leases have no background keepalive: whoever holds one refreshes it, here
    every ``period`` seconds (default ``ttl / 3``). ``on_lease(lease_id)`` is called
    from the keeper's thread with the first lease and with each replacement (the old
    one expired while etcd was away, or was revoked), so the owner can rewrite the
    keys attached to it; if it raises, it
    is called again on the next round.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        client: EtcdClient,
        ttl: int,
        on_lease: Callable[[int], None],
        *,
        period: float | None = None,
    ) -> None:
        self._client, self._ttl, self._on_lease = client, ttl, on_lease
        self._period = ttl / 3 if period is None else period
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="cbcontrol-etcd-lease", daemon=True
        )
        self.lease_id: int | None = None

    def start(self) -> None:
        """Start the keeper's thread."""
        self._thread.start()

    def stop(self, *, revoke: bool = True) -> None:
        """Stop refreshing; with ``revoke``, revoke the lease so its keys go now."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._client.timeout + 1)
        if revoke and self.lease_id is not None:
            try:
                self._client.revoke(self.lease_id)
            except StoreError as exc:
                logger.debug("could not revoke lease %x: %s", self.lease_id, exc)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        announced = failing = False
        while not self._stop.is_set():
            try:
                if self.lease_id is None or self._client.keepalive(self.lease_id) == 0:
                    if self.lease_id is not None:
                        logger.warning(
                            "lease %x was lost; granting another", self.lease_id
                        )
                    self.lease_id = self._client.grant_lease(self._ttl)
                    announced = False
                if not announced:
                    self._on_lease(self.lease_id)
                    announced = True
                if failing:
                    logger.info("lease %x is kept alive again", self.lease_id)
                failing = False
            except StoreError as exc:
                if not failing:
                    logger.warning("lease keeper failed, retrying: %s", exc)
                failing = True
            except Exception:
                logger.exception("on_lease(%s) failed; retrying", self.lease_id)
            self._stop.wait(min(1.0, self._period) if failing else self._period)
