"""The batch engine: the per-order status change, the results files, the batch log and stop, the wait rules.

No Airflow and no HTTP library here: the engine talks to Gooten through the client it is handed (any object
with the client's methods), so the operators, the sensor and the trigger share it, and it is tested alone.
"""
