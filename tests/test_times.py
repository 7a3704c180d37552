"""Wall times that do not exist or happen twice, at each daylight-saving change of the three
test zones (Europe, the US, Sydney); whole seconds."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailproc.times import WallTimeError, typed_instant, wall_instant, whole_second

BERLIN, NEW_YORK, SYDNEY = (
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Sydney"),
)

# (zone, a wall time the clocks skip, the gap as the message names it)
GAPS = [
    pytest.param(BERLIN, "2026-03-29 02:30", "from 02:00 to 03:00 on 2026-03-29", id="berlin"),
    pytest.param(NEW_YORK, "2026-03-08 02:15", "from 02:00 to 03:00 on 2026-03-08", id="new york"),
    pytest.param(SYDNEY, "2026-10-04 02:45", "from 02:00 to 03:00 on 2026-10-04", id="sydney"),
]
# (zone, a wall time the clocks repeat, the fold, its first and second offsets)
FOLDS = [
    pytest.param(
        BERLIN, "2026-10-25 02:30", "from 03:00 to 02:00 on 2026-10-25", "+02:00", "+01:00",
        id="berlin",
    ),
    pytest.param(
        NEW_YORK, "2026-11-01 01:15", "from 02:00 to 01:00 on 2026-11-01", "-04:00", "-05:00",
        id="new york",
    ),
    pytest.param(
        SYDNEY, "2026-04-05 02:45", "from 03:00 to 02:00 on 2026-04-05", "+11:00", "+10:00",
        id="sydney",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("zone", "text", "gap"), GAPS)
def test_a_typed_time_in_a_gap_is_refused_naming_zone_and_gap(zone, text, gap):
    with pytest.raises(WallTimeError) as caught:
        typed_instant(datetime.fromisoformat(text), zone)
    assert str(caught.value) == (
        f"{text} does not exist in {zone.key}: the clocks jump forward {gap}; "
        "give a time before or after the gap"
    )


@pytest.mark.parametrize(("zone", "text", "fold", "first", "second"), FOLDS)
def test_a_typed_time_in_a_fold_is_refused_naming_both_offsets(zone, text, fold, first, second):
    with pytest.raises(WallTimeError) as caught:
        typed_instant(datetime.fromisoformat(text), zone)
    iso = text.replace(" ", "T")
    assert str(caught.value) == (
        f"{text} happens twice in {zone.key}: the clocks go back {fold}, so it is first "
        f"{first} and then {second}; write the offset you mean, e.g. {iso}{first}"
    )
    # With the offset written, both readings are accepted, an hour apart.
    early = typed_instant(datetime.fromisoformat(iso + first), zone)
    late = typed_instant(datetime.fromisoformat(iso + second), zone)
    assert late - early == timedelta(hours=1)


@pytest.mark.parametrize(("zone", "text", "gap"), GAPS)
def test_times_next_to_a_gap_are_accepted(zone, text, gap):
    day = text[:10]
    before = typed_instant(datetime.fromisoformat(f"{day} 01:59"), zone)
    after = typed_instant(datetime.fromisoformat(f"{day} 03:00"), zone)
    assert after - before == timedelta(minutes=1)


@pytest.mark.parametrize(("zone", "text", "fold", "first", "second"), FOLDS)
def test_computed_wall_times_in_a_fold_are_the_earlier_instant(zone, text, fold, first, second):
    local = datetime.fromisoformat(text)
    assert wall_instant(local, zone) == datetime.fromisoformat(text + first).astimezone(UTC)


@pytest.mark.parametrize(("zone", "text", "gap"), GAPS)
def test_computed_wall_times_in_a_gap_keep_the_offset_before_the_jump(zone, text, gap):
    moment = wall_instant(datetime.fromisoformat(text), zone)
    assert moment.astimezone(zone).replace(tzinfo=None) == datetime.fromisoformat(text) + timedelta(
        hours=1
    )


def test_typed_times_with_fractions_are_rounded_up_to_the_whole_second():
    assert typed_instant(datetime(2026, 3, 2, 9, 29, 59, 1), UTC) == datetime(
        2026, 3, 2, 9, 30, tzinfo=UTC
    )
    exact = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert whole_second(exact) is exact
