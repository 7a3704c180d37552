"""Business calendars: working hours, nights, weekends, holidays, DST, 24×7 — and properties."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailproc.calendars import (
    BusinessCalendar,
    Holidays,
    NoBusinessTime,
    Weekday,
    around_the_clock,
    country_holidays,
    day_hours,
    make_calendar,
    parse_hours,
    parse_time,
)

PRAGUE, NEW_YORK = ZoneInfo("Europe/Prague"), ZoneInfo("America/New_York")
WORKDAYS = [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI]
SPLIT_DAY = ["08:00-12:00", "13:00-17:00"]

OFFICE = make_calendar(
    "office", "Europe/Prague", {d: SPLIT_DAY for d in WORKDAYS}, [date(2026, 12, 31)], "CZ"
)
NEW_YORK_OFFICE = make_calendar(
    "ny", "America/New_York", {d: ["09:00-17:00"] for d in WORKDAYS}, (), "US", "NY"
)
ALL_DAY = make_calendar("all-day", "Europe/Prague", {d: ["00:00-24:00"] for d in Weekday})
ALL_DAY_NY = make_calendar("all-day-ny", "America/New_York", {d: ["00:00-24:00"] for d in Weekday})
NIGHTS = make_calendar(
    "nights", "Europe/Prague", {d: ["00:00-06:00", "22:00-24:00"] for d in Weekday}
)
SMALL_HOURS = make_calendar("small-hours", "Europe/Prague", {d: ["01:00-04:00"] for d in Weekday})
ODD_EDGES = make_calendar(
    "odd-edges", "Europe/Prague", {d: ["01:00-02:30", "02:30-04:00"] for d in Weekday}
)
ALWAYS = around_the_clock()


def at(zone: ZoneInfo, text: str) -> datetime:
    """A local wall time ('2026-03-02 09:00') as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


H = timedelta(hours=1)
M = timedelta(minutes=1)

# (calendar, start as local wall time, business time to add, due as local wall time)
ADD_TABLE = [
    pytest.param(OFFICE, "2026-03-02 09:00", 2 * H, "2026-03-02 11:00 CET", id="within a morning"),
    pytest.param(OFFICE, "2026-03-02 11:00", 2 * H, "2026-03-02 14:00 CET", id="over lunch"),
    pytest.param(OFFICE, "2026-03-03 20:00", H, "2026-03-04 09:00 CET", id="over a night"),
    pytest.param(OFFICE, "2026-03-06 16:00", 2 * H, "2026-03-09 09:00 CET", id="over a weekend"),
    pytest.param(OFFICE, "2026-03-07 10:00", 30 * M, "2026-03-09 08:30 CET", id="from saturday"),
    pytest.param(OFFICE, "2026-03-06 13:00", 4 * H, "2026-03-06 17:00 CET", id="to closing time"),
    pytest.param(OFFICE, "2026-03-02 07:00", 8 * H, "2026-03-02 17:00 CET", id="one working day"),
    pytest.param(OFFICE, "2026-03-02 08:00", 40 * H, "2026-03-06 17:00 CET", id="a working week"),
    pytest.param(
        OFFICE, "2026-04-02 16:00", 2 * H, "2026-04-07 09:00 CEST", id="easter holidays (CZ)"
    ),
    pytest.param(
        OFFICE, "2026-12-30 16:00", 2 * H, "2027-01-04 09:00 CET", id="listed date, new year"
    ),
    pytest.param(
        OFFICE, "2026-03-27 16:00", 2 * H, "2026-03-30 09:00 CEST", id="prague spring forward"
    ),
    pytest.param(OFFICE, "2026-10-23 16:00", 2 * H, "2026-10-26 09:00 CET", id="prague fall back"),
    pytest.param(
        OFFICE, "2026-03-27 16:00", 40 * H, "2026-04-07 16:00 CEST", id="40h over dst and easter"
    ),
    pytest.param(
        NEW_YORK_OFFICE, "2026-03-06 16:00", 2 * H, "2026-03-09 10:00 EDT", id="new york spring"
    ),
    pytest.param(
        NEW_YORK_OFFICE, "2026-10-30 16:00", 2 * H, "2026-11-02 10:00 EST", id="new york fall"
    ),
    pytest.param(
        NEW_YORK_OFFICE, "2026-07-02 16:00", 2 * H, "2026-07-06 10:00 EDT", id="july 4th observed"
    ),
    pytest.param(ALL_DAY, "2026-03-28 23:00", 4 * H, "2026-03-29 04:00 CEST", id="real hours"),
    pytest.param(ALL_DAY, "2026-10-25 01:00", 2 * H, "2026-10-25 02:00 CET", id="hour repeated"),
    pytest.param(NIGHTS, "2026-03-02 05:00", 2 * H, "2026-03-02 23:00 CET", id="night shift"),
    pytest.param(NIGHTS, "2026-03-02 23:00", 2 * H, "2026-03-03 01:00 CET", id="over midnight"),
]


@pytest.mark.parametrize(("calendar", "start", "amount", "due"), ADD_TABLE)
def test_add_business_time(calendar, start, amount, due):
    begin = at(calendar.zone, start)
    result = calendar.add(begin, amount)
    assert local(result, calendar.zone) == due
    assert result.tzinfo is UTC
    assert calendar.between(begin, result) == amount


# (calendar, local day) -> hours of business time that day
DAY_TABLE = [
    (ALL_DAY, "2026-03-29", 23),  # Prague springs forward at 02:00
    (ALL_DAY, "2026-10-25", 25),  # and falls back at 03:00
    (ALL_DAY, "2026-03-30", 24),
    (ALL_DAY_NY, "2026-03-08", 23),
    (ALL_DAY_NY, "2026-11-01", 25),
    (OFFICE, "2026-03-30", 8),  # the Monday after the change: office hours do not move
    (OFFICE, "2026-04-03", 0),  # Good Friday
    (NIGHTS, "2026-03-29", 7),  # 00:00-06:00 loses its 02:00-03:00
    (NIGHTS, "2026-10-25", 9),  # and gains a second 02:00-03:00
    (SMALL_HOURS, "2026-03-29", 2),
    (SMALL_HOURS, "2026-10-25", 4),
    (ODD_EDGES, "2026-03-29", 2),  # 02:30 does not exist: both halves meet at the jump
    (ODD_EDGES, "2026-10-25", 4),  # 02:30 happens twice: no minute counts twice
]


@pytest.mark.parametrize(("calendar", "day", "hours"), DAY_TABLE)
def test_a_day_has_the_business_hours_it_really_has(calendar, day, hours):
    start = at(calendar.zone, f"{day} 00:00")
    end = at(calendar.zone, (date.fromisoformat(day) + timedelta(days=1)).isoformat() + " 00:00")
    assert calendar.between(start, end) == hours * H
    spans = calendar.working_intervals(date.fromisoformat(day))
    assert sum((b - a for a, b in spans), timedelta(0)) == hours * H


def test_a_skipped_wall_time_is_the_instant_the_clocks_jump():
    spans = ODD_EDGES.working_intervals(date(2026, 3, 29))
    assert [(local(a, PRAGUE), local(b, PRAGUE)) for a, b in spans] == [
        ("2026-03-29 01:00 CET", "2026-03-29 04:00 CEST")
    ]


@pytest.mark.parametrize(
    ("calendar", "moment", "expected"),
    [
        (OFFICE, "2026-03-02 09:00", "2026-03-02 09:00 CET"),
        (OFFICE, "2026-03-02 12:30", "2026-03-02 13:00 CET"),
        (OFFICE, "2026-03-02 17:00", "2026-03-03 08:00 CET"),  # closing time is not working
        (OFFICE, "2026-03-07 12:00", "2026-03-09 08:00 CET"),
        (OFFICE, "2026-04-02 18:00", "2026-04-07 08:00 CEST"),
        (ALWAYS, "2026-03-07 12:00", "2026-03-07 12:00 CET"),
    ],
)
def test_next_business_instant(calendar, moment, expected):
    assert local(calendar.next_business_instant(at(PRAGUE, moment)), PRAGUE) == expected


def test_between_is_signed_and_zero_outside_working_hours():
    friday, monday = at(PRAGUE, "2026-03-06 18:00"), at(PRAGUE, "2026-03-09 07:00")
    assert OFFICE.between(friday, monday) == timedelta(0)
    start, end = at(PRAGUE, "2026-03-02 10:00"), at(PRAGUE, "2026-03-03 10:00")
    assert OFFICE.between(start, end) == 8 * H
    assert OFFICE.between(end, start) == -8 * H


def test_adding_nothing_is_the_start_itself():
    saturday = at(PRAGUE, "2026-03-07 12:00")
    assert OFFICE.add(saturday, timedelta(0)) == saturday


def test_around_the_clock_is_elapsed_time():
    start = at(PRAGUE, "2026-03-28 20:00")
    assert ALWAYS.add(start, 40 * H) == start + 40 * H
    assert ALWAYS.between(start, start + 40 * H) == 40 * H
    assert ALWAYS.description == "24x7 (UTC; 24×7)"


def test_country_and_subdivision_holidays():
    bavaria = make_calendar(
        "by", "Europe/Berlin", {d: ["09:00-17:00"] for d in WORKDAYS}, (), "DE", "BY"
    )
    berlin = make_calendar(
        "be", "Europe/Berlin", {d: ["09:00-17:00"] for d in WORKDAYS}, (), "DE", "BE"
    )
    epiphany = date(2026, 1, 6)  # a holiday in Bavaria, not in Berlin
    assert bavaria.is_holiday(epiphany) and not berlin.is_holiday(epiphany)
    assert bavaria.description.endswith("holidays DE-BY)")


def test_describe_groups_days_with_equal_hours():
    assert OFFICE.description == (
        "office (Europe/Prague; Mon–Fri 08:00–12:00, 13:00–17:00; Sat–Sun off; "
        "holidays CZ + 1 listed date(s))"
    )


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive datetime"):
        OFFICE.add(datetime(2026, 3, 2, 9), H)


def test_a_calendar_without_working_time_for_years_is_an_error_not_a_hang():
    mondays = {date(2026, 3, 2) + timedelta(weeks=n) for n in range(600)}
    week = (((480, 960),),) + ((),) * 6
    only_mondays_all_off = BusinessCalendar("never", PRAGUE, week, frozenset(mondays))
    with pytest.raises(NoBusinessTime, match="no working time for 3660 days"):
        only_mondays_all_off.add(at(PRAGUE, "2026-03-02 09:00"), H)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("8-17", "is not working hours like '08:00-17:00'"),
        ("17:00-08:00", "the end must come after the start"),
        ("08:00-24:30", "hours run from 00:00 to 24:00"),
        ("08:61-09:00", "hours run from 00:00 to 24:00"),
    ],
)
def test_bad_working_hours_are_explained(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_hours(text)


def test_overlapping_hours_are_refused_and_24_00_is_midnight():
    with pytest.raises(ValueError, match="working hours overlap"):
        day_hours(["08:00-12:00", "11:00-13:00"])
    assert parse_hours("22:00 - 24:00") == (1320, 1440)


def test_a_bad_zone_is_explained():
    with pytest.raises(ValueError, match="unknown time zone 'Europe/Prag'"):
        make_calendar("x", "Europe/Prag", {Weekday.MON: ["09:00-17:00"]})


@pytest.mark.parametrize(
    ("country", "subdivision", "fragment"),
    [
        ("XX", None, "holidays: Country XX not available"),
        ("US", "ZZ", "does not have subdivision ZZ"),
    ],
)
def test_bad_countries_are_explained(country, subdivision, fragment):
    """Checked where a configuration is validated (CalendarConfig), before any calendar looks
    a day up: a calendar reads its holidays only when it needs a year."""
    with pytest.raises(ValueError, match=fragment):
        country_holidays(country, subdivision)


def test_a_year_of_holidays_is_read_back_from_the_store_without_the_package():
    stored: dict[str, frozenset[date]] = {}

    class Store:
        def get(self, key: str) -> frozenset[date] | None:
            return stored.get(key)

        def put(self, key: str, dates: frozenset[date]) -> None:
            stored[key] = dates

    first = Holidays("cz", None, Store())
    assert date(2026, 12, 24) in first and date(2026, 12, 23) not in first
    assert list(stored) == ["CZ--2026"] and date(2026, 1, 1) in stored["CZ--2026"]
    stored["CZ--2026"] = frozenset({date(2026, 12, 23)})  # what a later process would read
    second = Holidays("CZ", None, Store())
    assert date(2026, 12, 23) in second and date(2026, 12, 24) not in second


def test_a_years_holidays_do_not_depend_on_the_years_looked_at_before():
    forward, backward = Holidays("US", None), Holidays("US", None)
    days = [date(2021, 12, 31) + timedelta(days=n) for n in range(-3, 4)]
    assert [d in forward for d in days] == [d in backward for d in reversed(days)][::-1]


# --- properties -------------------------------------------------------------------------------

CALENDARS = [OFFICE, NEW_YORK_OFFICE, NIGHTS, ODD_EDGES, ALWAYS]
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
amounts = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(hours=120))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CALENDARS), instants, amounts)
def test_business_time_between_start_and_due_is_what_was_added(calendar, start, amount):
    assert calendar.between(start, calendar.add(start, amount)) == amount


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(CALENDARS[:-1]), instants, amounts)
def test_due_times_fall_within_working_hours(calendar, start, amount):
    due = calendar.add(start, amount)
    day = due.astimezone(calendar.zone).date()
    spans = [*calendar.working_intervals(day - timedelta(days=1)), *calendar.working_intervals(day)]
    assert any(begin < due <= end for begin, end in spans)


spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CALENDARS), instants, spans, spans)
def test_business_time_adds_up_over_consecutive_spans(calendar, a, first, second):
    b, c = a + first, a + first + second
    assert calendar.between(a, b) + calendar.between(b, c) == calendar.between(a, c)
    assert timedelta(0) <= calendar.between(a, c) <= c - a


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CALENDARS), instants, amounts, amounts)
def test_more_business_time_is_never_due_earlier(calendar, start, one, two):
    small, large = sorted((one, two))
    assert calendar.add(start, small) <= calendar.add(start, large)


# --- a 24×7 calendar keeps its zone -----------------------------------------------------------

TOKYO = ZoneInfo("Asia/Tokyo")
TOKYO_ALWAYS = around_the_clock("noc", "Asia/Tokyo")


def test_a_24x7_calendar_begins_its_days_at_midnight_in_its_own_zone():
    (begin, end), *rest = TOKYO_ALWAYS.working_intervals(date(2026, 3, 2))
    assert not rest
    assert (local(begin, TOKYO), local(end, TOKYO)) == (
        "2026-03-02 00:00 JST",
        "2026-03-03 00:00 JST",
    )
    assert begin == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    assert TOKYO_ALWAYS.description == "noc (Asia/Tokyo; 24×7)"
    start = at(TOKYO, "2026-03-02 23:30")
    assert TOKYO_ALWAYS.add(start, H) == start + H  # still elapsed time


# --- targets in business days -----------------------------------------------------------------

# (calendar, opened at local wall time, business days, deadline as local wall time)
DAYS_TABLE = [
    pytest.param(OFFICE, "2026-03-02 09:00", 1, "2026-03-02 17:00 CET", id="before the cut-off"),
    pytest.param(OFFICE, "2026-03-02 11:59", 3, "2026-03-04 17:00 CET", id="a minute before it"),
    pytest.param(OFFICE, "2026-03-02 12:00", 1, "2026-03-03 17:00 CET", id="at the cut-off"),
    pytest.param(OFFICE, "2026-03-02 07:00", 1, "2026-03-02 17:00 CET", id="before opening"),
    pytest.param(OFFICE, "2026-03-06 10:00", 3, "2026-03-10 17:00 CET", id="over a weekend"),
    pytest.param(OFFICE, "2026-03-07 10:00", 1, "2026-03-09 17:00 CET", id="opened on saturday"),
    pytest.param(OFFICE, "2026-04-02 09:00", 2, "2026-04-07 17:00 CEST", id="easter (CZ)"),
    pytest.param(OFFICE, "2026-03-27 13:00", 1, "2026-03-30 17:00 CEST", id="over the dst change"),
    pytest.param(OFFICE, "2026-12-30 15:00", 1, "2027-01-04 17:00 CET", id="listed date, new year"),
    pytest.param(NEW_YORK_OFFICE, "2026-07-02 09:00", 2, "2026-07-06 17:00 EDT", id="july 4th"),
    pytest.param(NIGHTS, "2026-03-02 03:00", 1, "2026-03-03 00:00 CET", id="a night shift"),
    pytest.param(TOKYO_ALWAYS, "2026-03-02 11:00", 1, "2026-03-03 00:00 JST", id="24x7 tokyo"),
    pytest.param(TOKYO_ALWAYS, "2026-03-02 13:00", 2, "2026-03-05 00:00 JST", id="24x7 after cut"),
]


@pytest.mark.parametrize(("calendar", "opened", "days", "deadline"), DAYS_TABLE)
def test_a_target_in_business_days_ends_with_the_nth_working_day(calendar, opened, days, deadline):
    assert local(calendar.end_of_working_days(at(calendar.zone, opened), days), calendar.zone) == (
        deadline
    )


def test_the_opening_day_does_not_count_after_its_working_hours_even_before_the_cut_off():
    late = make_calendar(
        "late", "Europe/Prague", {d: ["08:00-11:00"] for d in WORKDAYS}, cutoff="15:00"
    )
    assert local(late.end_of_working_days(at(PRAGUE, "2026-03-02 10:59"), 1), PRAGUE) == (
        "2026-03-02 11:00 CET"
    )
    assert local(late.end_of_working_days(at(PRAGUE, "2026-03-02 11:30"), 1), PRAGUE) == (
        "2026-03-03 11:00 CET"
    )


def test_a_cut_off_in_the_gap_of_a_dst_change_is_read_by_the_fold_0_rule():
    """02:30 does not exist in Prague on 2026-03-29: the cut-off is 02:30 read with the offset
    before the jump, i.e. 03:30 CEST."""
    early = make_calendar(
        "early", "Europe/Prague", {d: ["00:00-24:00"] for d in Weekday}, cutoff="02:30"
    )
    sunday_end = "2026-03-30 00:00 CEST"
    for opened, deadline in [
        ("2026-03-29 01:59", sunday_end),
        (datetime(2026, 3, 29, 3, 29, tzinfo=PRAGUE), sunday_end),
        (datetime(2026, 3, 29, 3, 30, tzinfo=PRAGUE), "2026-03-31 00:00 CEST"),
    ]:
        start = at(PRAGUE, opened) if isinstance(opened, str) else opened.astimezone(UTC)
        assert local(early.end_of_working_days(start, 1), PRAGUE) == deadline


@pytest.mark.parametrize(
    ("text", "minutes"), [("12:00", 720), ("00:00", 0), ("24:00", 1440), (" 9:30 ", 570)]
)
def test_cut_offs_are_times_of_day(text, minutes):
    assert parse_time(text) == minutes


@pytest.mark.parametrize("text", ["12", "25:00", "12:60", "noon", "24:01"])
def test_bad_cut_offs_are_explained(text):
    with pytest.raises(ValueError, match="is not a time of day like '12:00'"):
        parse_time(text)
