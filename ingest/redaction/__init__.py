"""The detectors behind :class:`ingest.redact.Redactor`: what personal data looks like in manuals.

``kinds`` names the placeholders, ``text`` maps full-width and OCR-confused characters so that
one set of patterns sees every spelling, ``numbers`` finds unlabelled numbers confirmed by their
checksums, ``labels`` finds values that a label (身份证号：, 联系人：, 住址：) declares personal.
"""
