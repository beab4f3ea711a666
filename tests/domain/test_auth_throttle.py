"""domain.auth_throttle: failed charger logins wait, the real charger never does (DESIGN: Charger security)."""

from __future__ import annotations

from voltline.domain.auth_throttle import FIRST_WAIT, FORGET_AFTER, MAX_WAIT, WINDOW, AuthThrottle


def fail_times(throttle: AuthThrottle, times: int, address: str = "a", identity: str = "CP1", now: float = 0) -> float:
    """Fail `times` times at `now`; the last wait started."""
    wait = 0.0
    for _ in range(times):
        wait = throttle.fail(address, identity, now)
    return wait


def test_five_failures_in_a_window_make_the_address_wait_for_that_identity_only() -> None:
    throttle = AuthThrottle()
    assert fail_times(throttle, 4) == 0 and throttle.wait("a", "CP1", 1).seconds == 0
    assert throttle.fail("a", "CP1", 1) == FIRST_WAIT
    assert throttle.wait("a", "CP1", 2).seconds == FIRST_WAIT - 1
    assert throttle.wait("a", "CP2", 2).seconds == 0  # another identity from that address
    assert throttle.wait("b", "CP1", 2).seconds == 0  # the real charger's own address


def test_failures_spread_wider_than_the_window_do_not_add_up() -> None:
    throttle = AuthThrottle()
    for step in range(10):
        assert throttle.fail("a", "CP1", step * (WINDOW / 4 + 0.1)) == 0


def test_each_further_failure_doubles_the_wait_up_to_five_minutes() -> None:
    throttle = AuthThrottle()
    now = 0.0
    waits = [fail_times(throttle, 5, now=now)]
    for _ in range(8):
        now += waits[-1]
        assert throttle.wait("a", "CP1", now).seconds == 0
        waits.append(throttle.fail("a", "CP1", now))
    assert waits == [10, 20, 40, 80, 160, 300, 300, 300, 300]
    assert max(waits) == MAX_WAIT


def test_a_correct_password_forgets_the_failures_and_a_quiet_spell_does_too() -> None:
    throttle = AuthThrottle()
    fail_times(throttle, 4)
    throttle.succeed("a", "CP1")
    assert fail_times(throttle, 4, now=1) == 0
    fail_times(throttle, 1, now=1)  # the fifth: waits
    later = 1 + FORGET_AFTER + 1
    assert throttle.wait("a", "CP1", later).seconds == 0
    assert throttle.fail("a", "CP1", later) == 0  # starts over instead of doubling


def test_failures_on_twenty_identities_make_the_address_wait_for_every_identity() -> None:
    throttle = AuthThrottle()
    for n in range(19):
        assert throttle.fail("a", f"CP{n}", n) == 0
    assert throttle.fail("a", "CP19", 19) == FIRST_WAIT
    assert throttle.wait("a", "CP-never-tried", 20).seconds > 0
    assert throttle.wait("b", "CP-never-tried", 20).seconds == 0


def test_a_refused_wait_is_reported_first_once() -> None:
    throttle = AuthThrottle()
    fail_times(throttle, 5)
    assert [throttle.wait("a", "CP1", t).first for t in (1, 2, 3)] == [True, False, False]
    throttle.fail("a", "CP1", FIRST_WAIT + 1)
    assert throttle.wait("a", "CP1", FIRST_WAIT + 2).first


def test_old_records_are_swept() -> None:
    throttle = AuthThrottle()
    for n in range(50):
        throttle.fail(f"10.0.0.{n}", "CP1", 0)
    assert len(throttle) == 100
    throttle.fail("b", "CP1", FORGET_AFTER + MAX_WAIT + 1)
    assert len(throttle) == 2
