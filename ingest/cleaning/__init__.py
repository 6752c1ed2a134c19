"""Building blocks of the cleaning stage; :func:`ingest.clean.clean_document` composes them.

Each module does one job so it can be tested on its own: ``running`` finds repeated
headers/footers, ``pagenum`` recognises page numbers, ``debris`` strips markup leftovers,
``marks`` knows the structural markers of Chinese regulations, ``joining`` turns lines into
blocks and ``tables`` merges tables split over a page break.
"""
