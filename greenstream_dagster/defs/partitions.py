"""Daily partitions, one per UTC calendar day from the configured start (SPEC §6).

end_offset=1 makes today's partition exist already: meters upload all day, and
the sensor must be able to process today's folder before midnight.
"""

from datetime import date

import dagster as dg


def daily_partitions(start: date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1, timezone="UTC")
