"""Tests of the webhook relay (gooten_provider.webhooks) over real HTTP, with a real Airflow REST API."""
