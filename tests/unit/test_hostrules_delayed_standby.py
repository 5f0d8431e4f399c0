from hostrules.delayed_standby import Process, armed

RM = ("/bin/sh", "/usr/share/heartbeat/ResourceManager", "takegroup", "hapostgres")


def test_the_waiting_subshell_of_a_failed_acquisition_and_its_sleep_are_found_subshell_first():
    procs = {1: Process(0, ("/sbin/init",)), 40: Process(1, ("heartbeat: master control process",)),
             700: Process(1, RM), 705: Process(700, ("sleep", "30"))}
    assert armed(procs) == [700, 705]


def test_other_sleeps_are_left_alone():
    procs = {
        700: Process(1, RM), 701: Process(700, ("sleep", "1")),  # giveup's retry loop
        800: Process(1, ("/bin/bash", "/usr/local/lib/pgcascade/ha-watch")), 801: Process(800, ("sleep", "30")),
        900: Process(1, ("sleep", "30")),  # an orphan: its parent is gone, nothing left to fire
    }
    assert armed(procs) == []


def test_nothing_armed_nothing_found():
    assert armed({}) == []
