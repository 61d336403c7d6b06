"""Transfers of Gooten data to other systems (Airflow's ``transfers/`` convention): orders to storage."""
