"""Subscriber lists: read spreadsheets and text exports, check rows, find duplicates, write.

Takes a list file, hands on a stream of validated `Subscriber`s and the problems found;
the only place that uses calamine, openpyxl and xlrd.
"""
