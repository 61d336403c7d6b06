"""Apache Airflow provider for the Gooten print-on-demand API."""

#: The package version, defined here only: hatch reads it for the build, ``get_provider_info`` for Airflow.
__version__ = "0.2.0"
