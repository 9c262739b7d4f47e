"""Holiday schedules and business-hour notices: the one place that says whether a service line is open."""
