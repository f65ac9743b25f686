"""The track record: every forecast recorded once, scored when its close arrives, per model version.

store (SQLite, the documented schema) · sessions (NYSE calendar) · scoring (pure: scores, scorecard, alarms)
· replay (`make ledger`) · live (the daily job) · read (what the dashboard may see) · dynamo (the AWS store).
"""
