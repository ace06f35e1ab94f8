"""Custom TFX components and executors."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as pipeline/__init__.py explains


def __getattr__(name: str):
    # TFX's KFP entrypoint imports custom artifact types by their title, `components.<Class>`;
    # resolved lazily so that the model code does not import TFX.
    if name == "SliceReportFiles":
        from components.slice_report import SliceReportFiles

        return SliceReportFiles
    if name == "EdgeModel":
        from components.edge_export import EdgeModel

        return EdgeModel
    raise AttributeError(name)
