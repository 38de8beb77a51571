"""Admission of unauthenticated sockets: the pure caps, and an idle host sharing the agent's address."""

from attacks import open_idle_sockets
from footage import open_stream
from helpers import add_client, url

from vigint.admission import Admission


def test_an_address_at_its_cap_loses_its_oldest_waiting_connection_to_a_newcomer_while_others_stay():
    # One idle host behind a shop's NAT must not lock out the shop's agent: the newcomer gets in.
    admission = Admission(max_total=100, max_per_address=2)
    assert admission.admit("a1", "10.0.0.1") == [] and admission.admit("b1", "10.0.0.2") == []
    assert admission.admit("a2", "10.0.0.1") == []
    assert admission.admit("a3", "10.0.0.1") == ["a1"]
    assert admission.admit("a4", "10.0.0.1") == ["a2"]
    assert len(admission) == 3  # b1, a3, a4: the other address kept its connection
    admission.release("a3")  # authenticated or closed: the address has room again
    assert admission.admit("a5", "10.0.0.1") == []
    admission.release("a1")  # evicted already: nothing changes
    assert admission.admit("a6", "10.0.0.1") == ["a4"]


def test_past_the_total_the_oldest_waiting_connection_goes():
    admission = Admission(max_total=3, max_per_address=10)
    for index in range(3):
        assert admission.admit(f"idle{index}", f"10.0.0.{index}") == []
    assert admission.admit("agent", "10.0.1.1") == ["idle0"]
    admission.release("agent")  # the agent said hello: it is never the one evicted afterwards
    assert admission.admit("late", "10.0.1.2") == []
    assert admission.admit("later", "10.0.1.3") == ["idle1"]
    assert len(admission) == 3


def test_releasing_twice_or_an_unknown_token_changes_nothing():
    admission = Admission(max_total=2, max_per_address=1)
    admission.admit("a", "10.0.0.1")
    admission.release("a")
    admission.release("a")
    admission.release("never-seen")
    assert len(admission) == 0
    assert admission.admit("b", "10.0.0.1") == []  # the address's count did not go negative or stay taken
    assert admission.admit("c", "10.0.0.1") == ["b"]


async def test_a_host_holding_32_idle_sockets_behind_the_agent_s_nat_does_not_lock_the_agent_out(start):
    server = await start(auth_timeout_seconds=30)  # idle sockets do not go away by themselves meanwhile
    _, _, api_key = await add_client(server.store)
    sockets = await open_idle_sockets(server.port, ["127.0.0.1"] * 32)  # the per-address cap, from the agent's own
    try:
        for _ in range(5):
            connection, welcome = await open_stream(url(server), api_key)
            assert welcome["type"] == "welcome"
            await connection.close()
    finally:
        for sock in sockets:
            sock.close()
