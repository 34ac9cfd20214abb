"""Event sources that are not HTTP: schedules (cron.py, schedule.py) and Lambda's sample
events (samples.py). cron.py and samples.py are pure and import nothing of the gateway."""
