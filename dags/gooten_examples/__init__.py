"""Support code of the Gooten example DAGs: warehouse schema and demo seed, row-level rules, audit table.

This package defines no DAG (``dags/.airflowignore`` keeps the DAG processor out of it). The DAG files
import it because Airflow puts the DAG folder on ``sys.path``. Nothing here imports Airflow at module
level except :mod:`gooten_examples.assets`, so ``demo/demo.py`` can build a warehouse without it.
"""
