"""kzmail: send a newsletter campaign to the subscriber lists organisers keep in spreadsheets."""

__version__ = "0.1.0"
