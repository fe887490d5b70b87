"""Analytics: DuckDB over Parquet snapshots of the system of record (`engine`, `snapshot`),
the seed's `DuckDBTrainingStorage` (`storage`), and the pages and reports built on them.

    from exports.analytics.engine import get_analytics
    get_analytics().summary["total_examples"]
"""
