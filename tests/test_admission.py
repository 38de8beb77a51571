from vigint.admission import Admission


def test_an_address_at_its_cap_has_its_newcomers_refused_while_others_get_in():
    admission = Admission(max_total=100, max_per_address=2)
    assert admission.admit("a1", "10.0.0.1") == [] and admission.admit("a2", "10.0.0.1") == []
    assert admission.admit("a3", "10.0.0.1") == ["a3"]  # refused: not counted
    assert admission.admit("b1", "10.0.0.2") == []
    assert len(admission) == 3
    admission.release("a1")  # authenticated or closed: the address has room again
    assert admission.admit("a4", "10.0.0.1") == []


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
    assert admission.admit("c", "10.0.0.1") == ["c"]
