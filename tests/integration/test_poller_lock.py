"""The mailbox poller's lock against a real Redis: one holder, and a holder whose lease ran out stays out."""

from redis import Redis

from service.intake.lock import PollerLock
from tests.mail import wait_until


class _LeaseRunsOutAfterNextCommand(Redis):
    """A connection on which, right after the next command answers, the lock's lease runs out and another poller
    takes it: the moment a release made of two commands (GET, then DEL) would delete the new holder's lock."""

    take_over = None

    def execute_command(self, *args, **options):
        reply = super().execute_command(*args, **options)
        take_over, self.take_over = self.take_over, None
        if take_over is not None:
            take_over()
        return reply


def _run_out(redis: Redis, lock: PollerLock) -> None:
    """The lease runs out, as when its holder stalls for longer than the lease."""
    redis.pexpire(lock.key, 1)
    wait_until(lambda: not redis.exists(lock.key), 5)


def test_a_second_poller_waits_until_the_first_gives_up(redis):
    first, second = PollerLock(redis, "m", lease_seconds=5), PollerLock(redis, "m", lease_seconds=5)
    assert first.acquire_or_extend() and not second.acquire_or_extend()
    redis.pexpire(first.key, 1000)
    assert first.acquire_or_extend() and redis.pttl(first.key) > 4000  # extended to a full lease
    first.release()
    assert not redis.exists(first.key) and second.acquire_or_extend()


def test_a_lock_taken_over_is_not_released_by_its_old_holder(redis):
    old, new = PollerLock(redis, "m", lease_seconds=5), PollerLock(redis, "m", lease_seconds=5)
    assert old.acquire_or_extend()
    _run_out(redis, old)
    assert new.acquire_or_extend()
    taken_over = redis.get(new.key)
    old.release()
    assert redis.get(new.key) == taken_over and new.acquire_or_extend()


def test_a_lock_taken_over_while_its_old_holder_releases_it_stays_with_the_new_holder(redis, redis_server):
    connection = _LeaseRunsOutAfterNextCommand.from_url(redis_server.url)
    old, new = PollerLock(connection, "m", lease_seconds=5), PollerLock(redis, "m", lease_seconds=5)
    assert old.acquire_or_extend()
    connection.take_over = lambda: (_run_out(redis, old), new.acquire_or_extend())
    old.release()
    assert redis.exists(new.key) and new.acquire_or_extend()
    connection.close()


def test_a_holder_whose_lease_ran_out_does_not_extend_the_new_holders_lease(redis):
    old, new = PollerLock(redis, "m", lease_seconds=5), PollerLock(redis, "m", lease_seconds=5)
    assert old.acquire_or_extend()
    _run_out(redis, old)
    assert new.acquire_or_extend()
    assert not old.acquire_or_extend()  # it finds the lock taken, and waits
    new.release()
    assert old.acquire_or_extend()  # and takes it once it is free
