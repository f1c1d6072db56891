"""The labelled notes corpora: loading them through intake, scoring the reader, training its model."""
