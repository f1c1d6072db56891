"""The insights pages: figures from the database, tables, CSV and SVG."""
